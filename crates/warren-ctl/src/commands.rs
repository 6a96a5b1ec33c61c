//! What each command does: which API calls, in which order, and what it prints.
//!
//! [`execute`] takes the parsed command line and a writer for stdout (a `Vec` in tests);
//! each command maps to one or two requests of [`ApiClient`] (a read before a write where
//! rabbitmqctl's semantics need it: `add_user` refuses an existing user, `change_password`
//! and `set_user_tags` keep what they do not change). Before acting it prints rabbitmqctl's
//! banner line ("Listing queues for vhost / ...") unless `-q`/`-s` or a JSON formatter.
//!
//! | command | request(s) |
//! |---|---|
//! | list_queues / list_exchanges / list_bindings / list_consumers | GET /api/{kind}/{vhost} |
//! | list_connections / list_users / list_vhosts | GET /api/{kind} |
//! | list_permissions | GET /api/vhosts/{vhost}/permissions |
//! | list_policies | GET /api/policies/{vhost} |
//! | add_user | GET, then PUT /api/users/{name} |
//! | delete_user | DELETE /api/users/{name} |
//! | change_password, set_user_tags | GET, then PUT /api/users/{name} |
//! | add_vhost / delete_vhost | PUT / DELETE /api/vhosts/{name} |
//! | set_permissions | PUT /api/permissions/{vhost}/{user} |
//! | set_policy / clear_policy | PUT / DELETE /api/policies/{vhost}/{name} |
//! | purge_queue | DELETE /api/queues/{vhost}/{name}/contents |
//! | delete_queue | DELETE /api/queues/{vhost}/{name}[?if-empty=true&if-unused=true] |
//! | close_connection | DELETE /api/connections/{name} with `X-Reason` |
//! | export_definitions / import_definitions | GET / POST /api/definitions |
//! | status | GET /api/overview, GET /api/nodes/{node} |

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::cli::{Command, CtlCli, GlobalOptions};
use crate::client::{ApiClient, path};
use crate::columns::{ColumnValue, ListKind};
use crate::error::{CtlError, Subject};
use crate::format::{self, Formatter};

/// Run one parsed command, writing its output to `out`.
pub fn execute(cli: &CtlCli, out: &mut dyn Write) -> Result<(), CtlError> {
    let o = &cli.options;
    let client = ApiClient::new(
        &o.url,
        &o.api_username,
        &o.api_password,
        Duration::from_secs(o.timeout.max(1)),
    );
    let ctl = Ctl {
        client,
        options: o,
        out,
    };
    ctl.run(&cli.command)
}

struct Ctl<'a> {
    client: ApiClient,
    options: &'a GlobalOptions,
    out: &'a mut dyn Write,
}

impl Ctl<'_> {
    fn run(mut self, command: &Command) -> Result<(), CtlError> {
        let vhost = self.options.vhost.clone();
        let vh = vhost.as_str();
        match command {
            Command::ListQueues(c) => self.list(
                ListKind::Queues,
                &c.columns,
                &path(&["queues", vh]),
                &format!("Listing queues for vhost {vh} ..."),
            ),
            Command::ListExchanges(c) => self.list(
                ListKind::Exchanges,
                &c.columns,
                &path(&["exchanges", vh]),
                &format!("Listing exchanges for vhost {vh} ..."),
            ),
            Command::ListBindings(c) => self.list(
                ListKind::Bindings,
                &c.columns,
                &path(&["bindings", vh]),
                &format!("Listing bindings for vhost {vh}..."),
            ),
            Command::ListConnections(c) => self.list(
                ListKind::Connections,
                &c.columns,
                &path(&["connections"]),
                "Listing connections ...",
            ),
            Command::ListConsumers(c) => self.list(
                ListKind::Consumers,
                &c.columns,
                &path(&["consumers", vh]),
                &format!("Listing consumers in vhost {vh} ..."),
            ),
            Command::ListUsers => {
                self.list(ListKind::Users, &[], &path(&["users"]), "Listing users ...")
            }
            Command::ListVhosts(c) => self.list(
                ListKind::Vhosts,
                &c.columns,
                &path(&["vhosts"]),
                "Listing vhosts ...",
            ),
            Command::ListPermissions => self.list(
                ListKind::Permissions,
                &[],
                &path(&["vhosts", vh, "permissions"]),
                &format!("Listing permissions for vhost \"{vh}\" ..."),
            ),
            Command::ListPolicies => self.list(
                ListKind::Policies,
                &[],
                &path(&["policies", vh]),
                &format!("Listing policies for vhost \"{vh}\" ..."),
            ),
            Command::AddUser { username, password } => self.add_user(username, password),
            Command::DeleteUser { username } => {
                self.banner(&format!("Deleting user \"{username}\" ..."))?;
                self.client
                    .delete(&path(&["users", username]), &[], Subject::User)
            }
            Command::ChangePassword {
                username,
                new_password,
            } => self.change_password(username, new_password),
            Command::SetUserTags { username, tags } => self.set_user_tags(username, tags),
            Command::AddVhost {
                name: vhost,
                description,
                tags,
                default_queue_type,
            } => {
                self.banner(&format!("Adding vhost \"{vhost}\" ..."))?;
                let mut body = Map::new();
                if let Some(d) = description {
                    body.insert("description".into(), json!(d));
                }
                if let Some(t) = tags {
                    body.insert("tags".into(), json!(t));
                }
                if let Some(q) = default_queue_type {
                    body.insert("default_queue_type".into(), json!(q));
                }
                self.client.put(
                    &path(&["vhosts", vhost]),
                    &Value::Object(body),
                    Subject::Vhost,
                )
            }
            Command::DeleteVhost { name: vhost } => {
                self.banner(&format!("Deleting vhost \"{vhost}\" ..."))?;
                self.client
                    .delete(&path(&["vhosts", vhost]), &[], Subject::Vhost)
            }
            Command::SetPermissions {
                username,
                conf,
                write,
                read,
            } => {
                self.banner(&format!(
                    "Setting permissions for user \"{username}\" in vhost \"{vh}\" ..."
                ))?;
                self.client.put(
                    &path(&["permissions", vh, username]),
                    &json!({"configure": conf, "write": write, "read": read}),
                    Subject::Other,
                )
            }
            Command::SetPolicy {
                name,
                pattern,
                definition,
                priority,
                apply_to,
            } => {
                let parsed: Value = serde_json::from_str(definition).map_err(|e| {
                    CtlError::BadArgument(format!(
                        "the policy definition is not JSON ({e}): {definition}"
                    ))
                })?;
                if !parsed.is_object() {
                    return Err(CtlError::BadArgument(format!(
                        "the policy definition must be a JSON object: {definition}"
                    )));
                }
                self.banner(&format!(
                    "Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" \
                     with priority \"{priority}\" for vhost \"{vh}\" ..."
                ))?;
                self.client.put(
                    &path(&["policies", vh, name]),
                    &json!({"pattern": pattern, "definition": parsed,
                            "priority": priority, "apply-to": apply_to}),
                    Subject::Other,
                )
            }
            Command::ClearPolicy { name } => {
                self.banner(&format!("Clearing policy \"{name}\" on vhost \"{vh}\" ..."))?;
                self.client
                    .delete(&path(&["policies", vh, name]), &[], Subject::Other)
            }
            Command::PurgeQueue { queue } => {
                self.banner(&format!("Purging queue '{queue}' in vhost '{vh}' ..."))?;
                self.client.delete(
                    &path(&["queues", vh, queue, "contents"]),
                    &[],
                    Subject::Other,
                )
            }
            Command::DeleteQueue {
                queue,
                if_empty,
                if_unused,
            } => {
                self.banner(&format!("Deleting queue '{queue}' on vhost '{vh}' ..."))?;
                let mut p = path(&["queues", vh, queue]);
                let mut query = Vec::new();
                if *if_empty {
                    query.push("if-empty=true");
                }
                if *if_unused {
                    query.push("if-unused=true");
                }
                if !query.is_empty() {
                    p.push('?');
                    p.push_str(&query.join("&"));
                }
                self.client.delete(&p, &[], Subject::Other)
            }
            Command::CloseConnection {
                connection,
                explanation,
            } => {
                self.banner(&format!(
                    "Closing connection {connection}, reason: {explanation}..."
                ))?;
                self.client.delete(
                    &path(&["connections", connection]),
                    &[("x-reason", explanation)],
                    Subject::Other,
                )
            }
            Command::ExportDefinitions { path: file } => self.export_definitions(file),
            Command::ImportDefinitions { path: file } => self.import_definitions(file.as_deref()),
            Command::Status => self.status(),
        }
    }

    /// rabbitmqctl's informational line, unless quiet, silent or machine-readable output.
    fn banner(&mut self, text: &str) -> Result<(), CtlError> {
        let o = self.options;
        if o.quiet || o.silent || o.formatter == Formatter::Json {
            return Ok(());
        }
        writeln!(self.out, "{text}").map_err(stdout_error)
    }

    fn list(
        &mut self,
        kind: ListKind,
        column_names: &[String],
        api_path: &str,
        banner: &str,
    ) -> Result<(), CtlError> {
        let columns = kind.select(column_names)?;
        self.banner(banner)?;
        let subject = match kind {
            ListKind::Connections | ListKind::Users | ListKind::Vhosts => Subject::Other,
            _ => Subject::Vhost,
        };
        let answer = self.client.get(api_path, subject)?;
        // A paginated answer (`?page=`) has its rows in `items`; a plain one is the array.
        let rows = match answer {
            Value::Array(rows) => rows,
            Value::Object(mut o) => match o.remove("items") {
                Some(Value::Array(rows)) => rows,
                _ => {
                    return Err(CtlError::BadAnswer {
                        path: api_path.to_string(),
                        detail: "expected a JSON array".into(),
                    });
                }
            },
            _ => {
                return Err(CtlError::BadAnswer {
                    path: api_path.to_string(),
                    detail: "expected a JSON array".into(),
                });
            }
        };
        let o = self.options;
        let headers = !(o.silent || o.no_table_headers);
        let text = format::render(o.formatter, &columns, &rows, headers);
        self.out.write_all(text.as_bytes()).map_err(stdout_error)
    }

    fn add_user(&mut self, username: &str, password: &str) -> Result<(), CtlError> {
        self.banner(&format!("Adding user \"{username}\" ..."))?;
        let user_path = path(&["users", username]);
        if self
            .client
            .get_optional(&user_path, Subject::User)?
            .is_some()
        {
            return Err(CtlError::AlreadyExists(format!(
                "User \"{username}\" already exists"
            )));
        }
        self.client.put(
            &user_path,
            &json!({"password": password, "tags": ""}),
            Subject::User,
        )
    }

    fn change_password(&mut self, username: &str, password: &str) -> Result<(), CtlError> {
        self.banner(&format!("Changing password for user \"{username}\" ..."))?;
        let user_path = path(&["users", username]);
        let user = self.client.get(&user_path, Subject::User)?;
        let tags = tags_of(&user).join(",");
        self.client.put(
            &user_path,
            &json!({"password": password, "tags": tags}),
            Subject::User,
        )
    }

    fn set_user_tags(&mut self, username: &str, tags: &[String]) -> Result<(), CtlError> {
        self.banner(&format!(
            "Setting tags for user \"{username}\" to [{}] ...",
            tags.join(", ")
        ))?;
        let user_path = path(&["users", username]);
        let user = self.client.get(&user_path, Subject::User)?;
        // Keep the password: send the stored hash back with its algorithm.
        let hash = user
            .get("password_hash")
            .and_then(Value::as_str)
            .ok_or_else(|| CtlError::BadAnswer {
                path: user_path.clone(),
                detail: "no password_hash in the user".into(),
            })?;
        let mut body = json!({"password_hash": hash, "tags": tags.join(",")});
        if let Some(alg) = user.get("hashing_algorithm").and_then(Value::as_str) {
            body["hashing_algorithm"] = json!(alg);
        }
        self.client.put(&user_path, &body, Subject::User)
    }

    fn export_definitions(&mut self, file: &Path) -> Result<(), CtlError> {
        let to_stdout = file.as_os_str() == "-";
        if !to_stdout {
            self.banner(&format!(
                "Exporting definitions in JSON to a file at \"{}\" ...",
                file.display()
            ))?;
        }
        let definitions = self.client.get(&path(&["definitions"]), Subject::Other)?;
        let mut text =
            serde_json::to_string_pretty(&definitions).map_err(|e| CtlError::BadAnswer {
                path: path(&["definitions"]),
                detail: e.to_string(),
            })?;
        text.push('\n');
        if to_stdout {
            self.out.write_all(text.as_bytes()).map_err(stdout_error)
        } else {
            std::fs::write(file, text).map_err(|source| CtlError::WriteFile {
                path: file.display().to_string(),
                source,
            })
        }
    }

    fn import_definitions(&mut self, file: Option<&Path>) -> Result<(), CtlError> {
        let (name, text) = match file {
            Some(f) if f.as_os_str() != "-" => {
                let text = std::fs::read_to_string(f).map_err(|source| CtlError::ReadFile {
                    path: f.display().to_string(),
                    source,
                })?;
                (f.display().to_string(), text)
            }
            _ => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| CtlError::ReadFile {
                        path: "standard input".into(),
                        source,
                    })?;
                ("standard input".to_string(), text)
            }
        };
        self.banner(&format!(
            "Importing definitions in JSON from a file at \"{name}\" ..."
        ))?;
        let definitions: Value = serde_json::from_str(&text)
            .map_err(|e| CtlError::BadArgument(format!("{name} is not JSON: {e}")))?;
        if !definitions.is_object() {
            return Err(CtlError::BadArgument(format!(
                "{name} is not a definitions object"
            )));
        }
        self.client
            .post(&path(&["definitions"]), &definitions, Subject::Other)
            .map(drop)
    }

    fn status(&mut self) -> Result<(), CtlError> {
        let overview = self.client.get(&path(&["overview"]), Subject::Other)?;
        let node_name = overview
            .get("node")
            .and_then(Value::as_str)
            .ok_or_else(|| CtlError::BadAnswer {
                path: path(&["overview"]),
                detail: "no node name".into(),
            })?
            .to_string();
        self.banner(&format!("Status of node {node_name} ..."))?;
        let node = self
            .client
            .get(&path(&["nodes", &node_name]), Subject::Other)?;
        let status = status_of(&overview, &node);
        let text = match self.options.formatter {
            Formatter::Json => format!("{}\n", Value::Object(status)),
            Formatter::Table => status
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", format::cell(Some(ColumnValue::Json(v)))))
                .collect(),
        };
        self.out.write_all(text.as_bytes()).map_err(stdout_error)
    }
}

/// A user's tags, from the API's array (3.10) or comma-separated string (older).
fn tags_of(user: &Value) -> Vec<String> {
    match user.get("tags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The `status` summary: a few fields of the overview and of the node, flattened.
fn status_of(overview: &Value, node: &Value) -> Map<String, Value> {
    let at = |v: &Value, p: &[&str]| -> Value {
        let mut cur = v;
        for seg in p {
            match cur.get(seg) {
                Some(next) => cur = next,
                None => return Value::Null,
            }
        }
        cur.clone()
    };
    let listeners: Vec<Value> = overview
        .get("listeners")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    json!(format!(
                        "{} {}:{}",
                        at(l, &["protocol"]).as_str().unwrap_or("?"),
                        at(l, &["ip_address"]).as_str().unwrap_or("?"),
                        at(l, &["port"])
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut alarms = Vec::new();
    if at(node, &["mem_alarm"]) == Value::Bool(true) {
        alarms.push(json!("memory"));
    }
    if at(node, &["disk_free_alarm"]) == Value::Bool(true) {
        alarms.push(json!("disk"));
    }
    let mut s = Map::new();
    let mut put = |k: &str, v: Value| {
        s.insert(k.to_string(), v);
    };
    put("node", at(overview, &["node"]));
    put("product_name", at(overview, &["product_name"]));
    put("product_version", at(overview, &["product_version"]));
    put("rabbitmq_version", at(overview, &["rabbitmq_version"]));
    put("management_version", at(overview, &["management_version"]));
    put("cluster_name", at(overview, &["cluster_name"]));
    put("uptime_ms", at(node, &["uptime"]));
    put("listeners", Value::Array(listeners));
    put("alarms", Value::Array(alarms));
    put("mem_used", at(node, &["mem_used"]));
    put("mem_limit", at(node, &["mem_limit"]));
    put("disk_free", at(node, &["disk_free"]));
    put("disk_free_limit", at(node, &["disk_free_limit"]));
    put("fd_used", at(node, &["fd_used"]));
    put("fd_total", at(node, &["fd_total"]));
    for total in [
        "connections",
        "channels",
        "exchanges",
        "queues",
        "consumers",
    ] {
        put(total, at(overview, &["object_totals", total]));
    }
    for total in ["messages", "messages_ready", "messages_unacknowledged"] {
        put(total, at(overview, &["queue_totals", total]));
    }
    s
}

fn stdout_error(source: std::io::Error) -> CtlError {
    CtlError::WriteFile {
        path: "standard output".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_come_from_an_array_or_a_string() {
        assert_eq!(
            tags_of(&json!({"tags": ["administrator", "monitoring"]})),
            ["administrator", "monitoring"]
        );
        assert_eq!(
            tags_of(&json!({"tags": "management, policymaker"})),
            ["management", "policymaker"]
        );
        assert!(tags_of(&json!({"tags": ""})).is_empty());
    }

    #[test]
    fn status_summarises_the_recorded_overview_and_node() {
        let overview: Value = serde_json::from_str(include_str!(
            "../../../integration/tests/fixtures/management/overview.json"
        ))
        .expect("fixture");
        let node: Value = serde_json::from_str(include_str!(
            "../../../integration/tests/fixtures/management/node.json"
        ))
        .expect("fixture");
        let s = status_of(&overview, &node);
        assert_eq!(s["node"], json!("rabbit@localhost"));
        assert_eq!(s["rabbitmq_version"], json!("3.10.8"));
        assert_eq!(s["alarms"], json!([]));
        let listeners = s["listeners"].as_array().expect("listeners");
        assert!(
            listeners.iter().any(|l| l == "amqp 127.0.0.1:5673"
                || l.as_str().is_some_and(|l| l.starts_with("amqp "))),
            "{listeners:?}"
        );
        assert!(s["queues"].is_number());
    }

    #[test]
    fn bad_policy_definition_is_a_data_error_before_any_request() {
        let cli = <CtlCli as clap::Parser>::try_parse_from([
            "warrenctl",
            "--url",
            "http://127.0.0.1:1",
            "set_policy",
            "p",
            ".*",
            "{not json",
        ])
        .expect("parses");
        let mut out = Vec::new();
        let err = execute(&cli, &mut out).expect_err("bad JSON");
        assert_eq!(err.exit_code(), 65, "{err}");
    }

    #[test]
    fn unknown_column_is_refused_before_any_request() {
        let cli = <CtlCli as clap::Parser>::try_parse_from([
            "warrenctl",
            "--url",
            "http://127.0.0.1:1",
            "list_queues",
            "colour",
        ])
        .expect("parses");
        let mut out = Vec::new();
        let err = execute(&cli, &mut out).expect_err("unknown column");
        assert_eq!(err.exit_code(), 64, "{err}");
        assert!(out.is_empty());
    }
}
