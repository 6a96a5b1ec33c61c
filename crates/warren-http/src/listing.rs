//! Lists as RabbitMQ's API returns them: sorted (`sort`, `sort_reverse`, dotted keys such as
//! `message_stats.publish`, after the endpoint's default order), filtered by `name`
//! (case-insensitive substring, or a case-insensitive regex with `use_regex=true`),
//! paginated when `page` is given (`page_size` 1..=500, default 100; the answer is then an
//! object with `items` and the counts), and cut down to `columns=a,b.c`.
//!
//! Handlers build every item as a `serde_json::Value` and hand the whole list here.

use std::cmp::Ordering;

use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 500;

/// The query parameters every list takes.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    /// Page number (1-based); pagination only when present.
    pub page: Option<String>,
    /// Page size.
    pub page_size: Option<String>,
    /// Name filter.
    pub name: Option<String>,
    /// `true`: `name` is a regex.
    pub use_regex: Option<String>,
    /// Sort key (dotted).
    pub sort: Option<String>,
    /// `true`: reverse.
    pub sort_reverse: Option<String>,
    /// Comma-separated columns (dotted).
    pub columns: Option<String>,
}

/// A compiled `name` filter.
type NameFilter = Box<dyn Fn(&str) -> bool>;

struct Page {
    number: usize,
    size: usize,
}

impl ListQuery {
    fn page(&self) -> Result<Option<Page>, ApiError> {
        let parse = |v: &Option<String>| -> Result<Option<i64>, ApiError> {
            v.as_deref()
                .map(|s| {
                    s.trim().parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid pagination parameter: {s}"))
                    })
                })
                .transpose()
        };
        let (page, size) = (parse(&self.page)?, parse(&self.page_size)?);
        let Some(page) = page else { return Ok(None) };
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE as i64);
        if page < 1 || size < 1 || size > MAX_PAGE_SIZE as i64 {
            return Err(ApiError::bad_request(format!(
                "Invalid pagination parameters: page number {page}, page size {size}"
            )));
        }
        Ok(Some(Page {
            number: page as usize,
            size: size as usize,
        }))
    }

    fn name_filter(&self) -> Result<Option<NameFilter>, ApiError> {
        let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if self.use_regex.as_deref() == Some("true") {
            let re = regex::RegexBuilder::new(name)
                .case_insensitive(true)
                .build()
                .map_err(|e| ApiError::bad_request(format!("invalid name regex: {e}")))?;
            Ok(Some(Box::new(move |n: &str| re.is_match(n))))
        } else {
            let needle = name.to_lowercase();
            Ok(Some(Box::new(move |n: &str| {
                n.to_lowercase().contains(&needle)
            })))
        }
    }
}

/// Erlang's term order as RabbitMQ's sort sees our JSON: numbers before strings, a
/// missing value counts as 0.
fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) | Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Object(_) => 2,
            Value::Array(_) => 3,
            Value::String(_) => 4,
        }
    }
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        _ => 0.0,
    };
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ if rank(a) == 0 && rank(b) == 0 => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn dotted<'a>(item: &'a Value, key: &str) -> &'a Value {
    static ZERO: Value = Value::Null;
    let mut v = item;
    for part in key.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return &ZERO,
        }
    }
    v
}

/// Keep only the wanted columns (each a dotted path) of one item.
fn columns(item: Value, wanted: &[Vec<&str>]) -> Value {
    let Value::Object(map) = item else {
        return item;
    };
    let mut out = Map::new();
    for (k, v) in map {
        let deeper: Vec<Vec<&str>> = wanted
            .iter()
            .filter(|path| path.first() == Some(&k.as_str()))
            .map(|path| path[1..].to_vec())
            .collect();
        if deeper.is_empty() {
            continue;
        }
        if deeper.iter().any(Vec::is_empty) {
            out.insert(k, v);
        } else {
            out.insert(k, columns(v, &deeper));
        }
    }
    Value::Object(out)
}

/// Sort, filter, paginate and cut `items` as the query asks; `default_sort` are the
/// endpoint's sort keys (e.g. `["vhost", "name"]`).
pub fn respond(
    mut items: Vec<Value>,
    query: &ListQuery,
    default_sort: &[&str],
) -> Result<Json<Value>, ApiError> {
    let page = query.page()?;
    let mut keys: Vec<&str> = Vec::with_capacity(default_sort.len() + 1);
    if let Some(sort) = query.sort.as_deref().filter(|s| !s.is_empty()) {
        keys.push(sort);
    }
    keys.extend_from_slice(default_sort);
    // `sort=` (empty) asks for no sorting at all, as RabbitMQ.
    if query.sort.as_deref() != Some("") {
        items.sort_by(|a, b| {
            keys.iter()
                .map(|k| compare(dotted(a, k), dotted(b, k)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        if query.sort_reverse.as_deref() == Some("true") {
            items.reverse();
        }
    }
    let wanted: Option<Vec<Vec<&str>>> = query.columns.as_deref().map(|c| {
        c.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.split('.').collect())
            .collect()
    });
    let cut = |items: Vec<Value>| -> Vec<Value> {
        match &wanted {
            Some(w) => items.into_iter().map(|i| columns(i, w)).collect(),
            None => items,
        }
    };
    let Some(page) = page else {
        return Ok(Json(Value::Array(cut(items))));
    };
    let total = items.len();
    if let Some(filter) = query.name_filter()? {
        items.retain(|i| filter(i.get("name").and_then(Value::as_str).unwrap_or("")));
    }
    let filtered = items.len();
    let page_count = filtered.div_ceil(page.size);
    let offset = (page.number - 1) * page.size;
    if offset > filtered {
        return Err(ApiError::bad_request(format!(
            "Page out of range, page: {} page size: {}, len: {}",
            page.number, page.size, filtered
        )));
    }
    let page_items: Vec<Value> = items.into_iter().skip(offset).take(page.size).collect();
    Ok(Json(json!({
        "total_count": total,
        "item_count": page_items.len(),
        "filtered_count": filtered,
        "page": page.number,
        "page_size": page.size,
        "page_count": page_count,
        "items": cut(page_items),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &Value) -> Vec<&str> {
        let list = v.get("items").unwrap_or(v);
        list.as_array()
            .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"name": "b", "vhost": "/", "messages": 3, "message_stats": {"publish": 9}}),
            json!({"name": "a", "vhost": "/", "messages": 10}),
            json!({"name": "Ca", "vhost": "/", "messages": 1, "message_stats": {"publish": 1}}),
        ]
    }

    #[test]
    fn sorts_by_default_then_by_the_asked_key_numbers_before_strings() {
        let q = ListQuery::default();
        let out = respond(items(), &q, &["name"])
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(names(&out), ["Ca", "a", "b"]);
        let q = ListQuery {
            sort: Some("message_stats.publish".into()),
            sort_reverse: Some("true".into()),
            ..Default::default()
        };
        let out = respond(items(), &q, &["name"])
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(names(&out), ["b", "Ca", "a"]);
    }

    #[test]
    fn paginates_after_filtering_with_counts() {
        let q = ListQuery {
            page: Some("1".into()),
            page_size: Some("1".into()),
            name: Some("A".into()),
            ..Default::default()
        };
        let out = respond(items(), &q, &["name"])
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(out["total_count"], 3);
        assert_eq!(out["filtered_count"], 2);
        assert_eq!(out["page_count"], 2);
        assert_eq!(names(&out), ["Ca"]);
        let q = ListQuery {
            page: Some("9".into()),
            ..Default::default()
        };
        assert!(respond(items(), &q, &["name"]).is_err());
        let q = ListQuery {
            page: Some("1".into()),
            page_size: Some("501".into()),
            ..Default::default()
        };
        assert!(respond(items(), &q, &["name"]).is_err());
    }

    #[test]
    fn columns_keep_dotted_paths() {
        let q = ListQuery {
            columns: Some("name,message_stats.publish".into()),
            ..Default::default()
        };
        let out = respond(items(), &q, &["name"])
            .map(|j| j.0)
            .unwrap_or_default();
        assert_eq!(
            out[0],
            json!({"name": "Ca", "message_stats": {"publish": 1}})
        );
        assert_eq!(out[1], json!({"name": "a"}));
    }
}
