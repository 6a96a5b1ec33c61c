//! `/api/bindings[/{vhost}]` and one source/destination pair:
//! `/api/bindings/{vhost}/e/{source}/q|e/{destination}` (GET the bindings between them,
//! POST a new one: 201 with its `properties_key` in `Location`) and
//! `.../{properties_key}` (GET, DELETE one binding).
//!
//! Binding needs write on the destination and read on the source, as queue.bind does.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::Value;
use warren_broker::access::{Permission, ResourceKind};
use warren_broker::definitions::json_to_table;
use warren_broker::{Dest, Destination};

use super::exchanges::{check, path_name};
use super::{API_CONNECTION, listed_vhosts, vhost};
use crate::auth::AuthUser;
use crate::body;
use crate::error::ApiError;
use crate::json;
use crate::listing::{ListQuery, respond};
use crate::state::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/bindings", get(list_all))
        .route("/api/bindings/{vhost}", get(list_in))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}",
            get(between).post(create),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(show).delete(remove),
        )
}

fn all(s: &ApiState, user: &AuthUser, one: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for v in listed_vhosts(s, user, one)? {
        out.extend(json::bindings_of(&v, true, |_, _| true));
    }
    Ok(out)
}

async fn list_all(
    State(s): State<ApiState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(all(&s, &user, None)?, &q, &[])
}

async fn list_in(
    State(s): State<ApiState>,
    user: AuthUser,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    respond(all(&s, &user, Some(&vhost))?, &q, &[])
}

/// `q` or `e` and a name: the destination.
fn destination(kind: &str, name: &str) -> Result<Dest, ApiError> {
    match kind {
        "q" => Ok(Destination::Queue(Arc::from(name))),
        "e" => Ok(Destination::Exchange(Arc::from(path_name(name)))),
        _ => Err(ApiError::not_found()),
    }
}

/// The bindings from `source` to `dest`, checking both ends exist (404 otherwise).
fn pairs(
    s: &ApiState,
    user: &AuthUser,
    vname: &str,
    source: &str,
    dest: &Dest,
) -> Result<Vec<Value>, ApiError> {
    let v = vhost(s, vname)?;
    user.require_vhost(s, vname)?;
    let source = path_name(source);
    if v.exchange(source).is_none() {
        return Err(ApiError::not_found());
    }
    let dest_exists = match dest {
        Destination::Queue(q) => v.has_queue(q),
        Destination::Exchange(x) => v.exchange(x).is_some(),
    };
    if !dest_exists {
        return Err(ApiError::not_found());
    }
    Ok(json::bindings_of(&v, source.is_empty(), |src, d| {
        src == source && d == dest
    }))
}

async fn between(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, source, kind, dest)): Path<(String, String, String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let dest = destination(&kind, &dest)?;
    respond(pairs(&s, &user, &vname, &source, &dest)?, &q, &[])
}

async fn show(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let dest = destination(&kind, &dest)?;
    pairs(&s, &user, &vname, &source, &dest)?
        .into_iter()
        .find(|b| same_props(b, &props))
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

fn dest_name(dest: &Dest) -> &str {
    match dest {
        Destination::Queue(q) | Destination::Exchange(q) => q,
    }
}

/// Percent-encode all but unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Undo `quote_plus`: `+` is a space, `%XX` a byte.
fn unquote_plus(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Does the binding `b` have the properties key a path names? Compared unquoted, as
/// RabbitMQ unpacks the key from the path (so `eu.*` and `eu.%2A` both name `eu.*`).
fn same_props(b: &Value, props: &str) -> bool {
    b["properties_key"]
        .as_str()
        .is_some_and(|key| unquote_plus(key) == unquote_plus(props))
}

fn check_bind(
    s: &ApiState,
    user: &AuthUser,
    vname: &str,
    source: &str,
    dest: &Dest,
) -> Result<(), ApiError> {
    match dest {
        Destination::Queue(q) => check(s, user, vname, Permission::Write, ResourceKind::Queue, q)?,
        Destination::Exchange(x) => {
            check(s, user, vname, Permission::Write, ResourceKind::Exchange, x)?
        }
    }
    check(
        s,
        user,
        vname,
        Permission::Read,
        ResourceKind::Exchange,
        source,
    )
}

async fn create(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, source, kind, dest)): Path<(String, String, String, String)>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let dest = destination(&kind, &dest)?;
    pairs(&s, &user, &vname, &source, &dest)?;
    user.require_vhost(&s, &vname)?;
    let v = vhost(&s, &vname)?;
    let map = body::object(&raw)?;
    let routing_key = body::string(&map, "routing_key")?.unwrap_or_default();
    let arguments = json_to_table("arguments", &body::table(&map, "arguments")?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let source = path_name(&source);
    check_bind(&s, &user, &vname, source, &dest)?;
    v.bind(
        source,
        dest.clone(),
        &routing_key,
        &arguments,
        API_CONNECTION,
    )?;
    // As RabbitMQ: the destination and the properties key, each URL-encoded.
    let location = format!(
        "{}/{}",
        url_encode(dest_name(&dest)),
        url_encode(&json::properties_key(&routing_key, &arguments))
    );
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn remove(
    State(s): State<ApiState>,
    user: AuthUser,
    Path((vname, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let dest = destination(&kind, &dest)?;
    let found = pairs(&s, &user, &vname, &source, &dest)?
        .into_iter()
        .find(|b| same_props(b, &props))
        .ok_or_else(ApiError::not_found)?;
    user.require_vhost(&s, &vname)?;
    let v = vhost(&s, &vname)?;
    let source = path_name(&source);
    check_bind(&s, &user, &vname, source, &dest)?;
    let routing_key = found["routing_key"].as_str().unwrap_or_default();
    let arguments = match &found["arguments"] {
        Value::Object(m) => {
            json_to_table("arguments", m).map_err(|e| ApiError::internal(e.to_string()))?
        }
        _ => Default::default(),
    };
    v.unbind(source, dest, routing_key, &arguments, API_CONNECTION)?;
    Ok(StatusCode::NO_CONTENT)
}
