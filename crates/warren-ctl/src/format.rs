//! Output: a list of API objects, cut to the selected columns, as rabbitmqctl prints it.
//!
//! - `table` (the default): a header line of column names unless `--silent` or
//!   `--no-table-headers`, then one line per row, cells separated by a tab. Cells are
//!   rabbitmqctl-like: strings bare, numbers and booleans as JSON, a missing or null value
//!   empty, a list of strings as `[a, b]` (a user's tags), any other object or list as
//!   compact JSON (a queue's arguments). Tabs and newlines inside a cell are escaped
//!   (`\t`, `\n`) so a row stays one line.
//! - `json`: one JSON array of objects keyed by the column names (values as the API gave
//!   them, `null` when missing), as `rabbitmqctl --formatter json`.

use serde_json::{Map, Value};

use crate::columns::{Column, ColumnValue};

/// `--formatter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Formatter {
    /// Tab-separated columns with a header line.
    Table,
    /// A JSON array of objects.
    Json,
}

/// Render `rows` (API objects) with `columns`; `headers`: print the header line (table).
pub fn render(formatter: Formatter, columns: &[Column], rows: &[Value], headers: bool) -> String {
    match formatter {
        Formatter::Table => table(columns, rows, headers),
        Formatter::Json => json(columns, rows),
    }
}

fn table(columns: &[Column], rows: &[Value], headers: bool) -> String {
    let mut out = String::new();
    if headers {
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        out.push_str(&names.join("\t"));
        out.push('\n');
    }
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| escape(&cell(c.value_in(row))))
            .collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

fn json(columns: &[Column], rows: &[Value]) -> String {
    let objects: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for c in columns {
                let value = match c.value_in(row) {
                    Some(ColumnValue::Json(v)) => v.clone(),
                    Some(ColumnValue::Text(s)) => Value::String(s.to_string()),
                    None => Value::Null,
                };
                object.insert(c.name.to_string(), value);
            }
            Value::Object(object)
        })
        .collect();
    let mut text = Value::Array(objects).to_string();
    text.push('\n');
    text
}

/// One table cell (see the module docs).
pub fn cell(value: Option<ColumnValue<'_>>) -> String {
    match value {
        None => String::new(),
        Some(ColumnValue::Text(s)) => s.to_string(),
        Some(ColumnValue::Json(v)) => json_cell(v),
    }
}

fn json_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("[{}]", names.join(", "))
        }
        other => other.to_string(),
    }
}

fn escape(cell: &str) -> String {
    if cell.contains(['\t', '\n', '\r']) {
        cell.replace('\t', "\\t")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::ListKind;
    use serde_json::json;

    fn queues() -> Vec<Value> {
        vec![
            json!({"name": "q1", "messages": 3, "durable": true, "policy": null,
                   "arguments": {"x-max-length": 10}}),
            json!({"name": "with\ttab", "messages": 0, "durable": false,
                   "arguments": {}}),
        ]
    }

    fn select(kind: ListKind, names: &[&str]) -> Vec<Column> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        kind.select(&names).expect("valid columns")
    }

    #[test]
    fn table_has_a_header_and_tab_separated_rows() {
        let cols = select(
            ListKind::Queues,
            &["name", "messages", "durable", "policy", "arguments"],
        );
        assert_eq!(
            render(Formatter::Table, &cols, &queues(), true),
            "name\tmessages\tdurable\tpolicy\targuments\n\
             q1\t3\ttrue\t\t{\"x-max-length\":10}\n\
             with\\ttab\t0\tfalse\t\t{}\n"
        );
    }

    #[test]
    fn table_without_headers_has_rows_only() {
        let cols = select(ListKind::Queues, &[]);
        assert_eq!(
            render(Formatter::Table, &cols, &queues()[..1], false),
            "q1\t3\n"
        );
        assert_eq!(
            render(Formatter::Table, &cols, &[], true),
            "name\tmessages\n"
        );
    }

    #[test]
    fn user_tags_print_as_a_list() {
        let cols = select(ListKind::Users, &[]);
        let users = vec![
            json!({"name": "guest", "tags": ["administrator"]}),
            json!({"name": "bob", "tags": ["monitoring", "management"]}),
            json!({"name": "eve", "tags": []}),
        ];
        assert_eq!(
            render(Formatter::Table, &cols, &users, true),
            "user\ttags\nguest\t[administrator]\nbob\t[monitoring, management]\neve\t[]\n"
        );
    }

    #[test]
    fn json_formatter_keys_rows_by_column_name() {
        let cols = select(ListKind::Queues, &["name", "messages", "policy"]);
        let out = render(Formatter::Json, &cols, &queues(), true);
        let parsed: Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(
            parsed,
            json!([{"name": "q1", "messages": 3, "policy": null},
                   {"name": "with\ttab", "messages": 0, "policy": null}])
        );
    }
}
