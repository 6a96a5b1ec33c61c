//! JSON values printed as RabbitMQ prints them in its error texts: Erlang's `~p` of the
//! term the JSON decoded to (a string is a binary `<<"x">>`, `null` / `true` / `false`
//! are atoms, an object is a map `#{<<"k">> => v}`, a float prints with a `.0` or as
//! `1.0e20`), and `~p`'s line breaking: a list, tuple or map that does not fit in the 80
//! columns left of where it starts prints one element per line, aligned after its
//! opening bracket.

use serde_json::Value;

/// Erlang's line length for `~p`.
const LINE: usize = 80;

/// A term to print: JSON values, and the `{Key, Value}` tuples and lists RabbitMQ's texts
/// build around them.
#[derive(Debug, Clone)]
pub(crate) enum Term<'a> {
    /// A decoded JSON value.
    Json(&'a Value),
    /// A binary (a JSON object key).
    Binary(&'a str),
    /// An Erlang string (a charlist, printed `"..."`).
    String(String),
    /// An integer.
    Int(i64),
    /// A tuple.
    Tuple(Vec<Term<'a>>),
    /// A list.
    List(Vec<Term<'a>>),
}

/// `term` as `~p` prints it when it starts at column `col`.
pub(crate) fn pretty(term: &Term<'_>, col: usize) -> String {
    let one_line = flat(term);
    if col + one_line.chars().count() < LINE {
        return one_line;
    }
    let (open, close, items): (&str, &str, Vec<String>) = match term {
        Term::Tuple(items) => ("{", "}", broken(items, col + 1)),
        Term::List(items) => ("[", "]", broken(items, col + 1)),
        Term::Json(Value::Array(items)) => {
            let terms: Vec<Term<'_>> = items.iter().map(Term::Json).collect();
            ("[", "]", broken(&terms, col + 1))
        }
        Term::Json(Value::Object(map)) => {
            let items = map
                .iter()
                .map(|(k, v)| {
                    let key = flat(&Term::Binary(k));
                    let at = col + 2 + key.chars().count() + 4;
                    format!("{key} => {}", pretty(&Term::Json(v), at))
                })
                .collect();
            ("#{", "}", items)
        }
        _ => return one_line,
    };
    let indent = " ".repeat(col + open.len());
    format!("{open}{}{close}", items.join(&format!(",\n{indent}")))
}

fn broken(items: &[Term<'_>], col: usize) -> Vec<String> {
    items.iter().map(|t| pretty(t, col)).collect()
}

/// `term` on one line.
pub(crate) fn flat(term: &Term<'_>) -> String {
    match term {
        Term::Json(v) => json(v),
        Term::Binary(s) => binary(s),
        Term::String(s) => format!("\"{}\"", escape(s)),
        Term::Int(i) => i.to_string(),
        Term::Tuple(items) => format!("{{{}}}", join(items)),
        Term::List(items) => format!("[{}]", join(items)),
    }
}

fn join(items: &[Term<'_>]) -> String {
    items.iter().map(flat).collect::<Vec<_>>().join(",")
}

fn json(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => float(f),
            _ => n.to_string(),
        },
        Value::String(s) => binary(s),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(json).collect::<Vec<_>>().join(","))
        }
        Value::Object(map) => format!(
            "#{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{} => {}", binary(k), json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn binary(s: &str) -> String {
    format!("<<\"{}\">>", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Erlang's shortest float form: `1.5`, `100.0`, `1.0e20`, `1.0e-5`.
fn float(f: f64) -> String {
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let sci = format!("{f:e}");
        match sci.split_once('e') {
            Some((mantissa, exp)) if !mantissa.contains('.') => format!("{mantissa}.0e{exp}"),
            _ => sci,
        }
    } else {
        let fixed = format!("{f}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_print_as_erlang_terms() {
        let v = json!([1, -2, 1.5, 100.0, 1e20, "a\"b", true, null, {"b": null}]);
        assert_eq!(
            flat(&Term::Json(&v)),
            r#"[1,-2,1.5,100.0,1.0e20,<<"a\"b">>,true,null,#{<<"b">> => null}]"#
        );
    }

    #[test]
    fn long_lists_break_one_element_per_line() {
        let a = json!("a-long-value-aaaaaaaaaa");
        let b = json!("bbbbbbbbbbbbbbbbbbbb");
        let z = json!(1);
        let list = Term::List(vec![
            Term::Tuple(vec![Term::Binary("bar-long-key"), Term::Json(&b)]),
            Term::Tuple(vec![Term::Binary("foo-long-key-aaaa"), Term::Json(&a)]),
            Term::Tuple(vec![Term::Binary("zed"), Term::Json(&z)]),
        ]);
        // As RabbitMQ 3.10 prints it.
        assert_eq!(
            pretty(&list, 0),
            "[{<<\"bar-long-key\">>,<<\"bbbbbbbbbbbbbbbbbbbb\">>},\n {<<\"foo-long-key-aaaa\">>,<<\"a-long-value-aaaaaaaaaa\">>},\n {<<\"zed\">>,1}]"
        );
    }

    #[test]
    fn a_tuple_that_reaches_column_80_breaks() {
        let t = Term::Tuple(vec![
            Term::String("unmatched parentheses".into()),
            Term::Int(1),
        ]);
        assert_eq!(
            pretty(&t, 53),
            format!("{{\"unmatched parentheses\",\n{}1}}", " ".repeat(54))
        );
        let t = Term::Tuple(vec![Term::String("nothing to repeat".into()), Term::Int(0)]);
        assert_eq!(pretty(&t, 53), "{\"nothing to repeat\",0}");
    }
}
