//! The `list_*` commands' columns: rabbitmqctl's info item names, which the user types
//! (`warren ctl list_queues name messages consumers`), mapped to the management API's JSON.
//!
//! Each [`ListKind`] has rabbitmqctl's default columns and every info item rabbitmqctl
//! accepts. An item is read from the API object by a JSON path ([`Source::Path`]): mostly the
//! same name (`messages`), sometimes nested (`queue_name` is a consumer's `queue.name`,
//! `channel_pid` its `channel_details.name`: the API has names where rabbitmqctl has Erlang
//! pids). Items that only exist as Erlang internals (a queue's `pid`, `disk_reads`) are
//! [`Source::Unavailable`]: asking for one is a usage error naming it, not an empty column.

use crate::error::CtlError;

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The value at this JSON path of the API's object (null or absent: an empty cell).
    Path(&'static [&'static str]),
    /// A value that is the same for every row by definition: a binding's source is always
    /// an exchange in AMQP 0-9-1.
    Constant(&'static str),
    /// An Erlang-internal item the HTTP API does not expose.
    Unavailable,
}

/// One column: its rabbitmqctl name and where its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// rabbitmqctl's info item name (the header).
    pub name: &'static str,
    /// Where the value is.
    pub source: Source,
}

/// The list commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `list_queues`
    Queues,
    /// `list_exchanges`
    Exchanges,
    /// `list_bindings`
    Bindings,
    /// `list_connections`
    Connections,
    /// `list_consumers`
    Consumers,
    /// `list_vhosts`
    Vhosts,
    /// `list_users`
    Users,
    /// `list_permissions`
    Permissions,
    /// `list_policies`
    Policies,
}

/// `col!("messages")`: the API field of the same name; `col!("queue_name" => "queue"."name")`:
/// a nested field; `=> unavailable`, `=> constant "exchange"`.
macro_rules! col {
    ($name:literal) => {
        Column {
            name: $name,
            source: Source::Path(&[$name]),
        }
    };
    ($name:literal => unavailable) => {
        Column {
            name: $name,
            source: Source::Unavailable,
        }
    };
    ($name:literal => constant $value:literal) => {
        Column {
            name: $name,
            source: Source::Constant($value),
        }
    };
    ($name:literal => $($seg:literal).+) => {
        Column {
            name: $name,
            source: Source::Path(&[$($seg),+]),
        }
    };
}

const QUEUE_COLUMNS: &[Column] = &[
    col!("name"),
    col!("durable"),
    col!("auto_delete"),
    col!("arguments"),
    col!("policy"),
    col!("pid" => unavailable),
    col!("owner_pid" => "owner_pid_details"."name"),
    col!("exclusive"),
    col!("exclusive_consumer_pid" => unavailable),
    col!("exclusive_consumer_tag"),
    col!("messages_ready"),
    col!("messages_unacknowledged"),
    col!("messages"),
    col!("messages_ready_ram"),
    col!("messages_unacknowledged_ram"),
    col!("messages_ram"),
    col!("messages_persistent"),
    col!("message_bytes"),
    col!("message_bytes_ready"),
    col!("message_bytes_unacknowledged"),
    col!("message_bytes_ram"),
    col!("message_bytes_persistent"),
    col!("head_message_timestamp"),
    col!("disk_reads" => unavailable),
    col!("disk_writes" => unavailable),
    col!("consumers"),
    col!("consumer_utilisation"),
    col!("consumer_capacity"),
    col!("memory"),
    col!("slave_pids"),
    col!("synchronised_slave_pids"),
    col!("state"),
    col!("type"),
    col!("leader"),
    col!("members"),
    col!("online"),
];

const EXCHANGE_COLUMNS: &[Column] = &[
    col!("name"),
    col!("type"),
    col!("durable"),
    col!("auto_delete"),
    col!("internal"),
    col!("arguments"),
    col!("policy"),
];

const BINDING_COLUMNS: &[Column] = &[
    col!("source_name" => "source"),
    col!("source_kind" => constant "exchange"),
    col!("destination_name" => "destination"),
    col!("destination_kind" => "destination_type"),
    col!("routing_key"),
    col!("arguments"),
];

const CONNECTION_COLUMNS: &[Column] = &[
    col!("pid" => unavailable),
    col!("name"),
    col!("port"),
    col!("host"),
    col!("peer_port"),
    col!("peer_host"),
    col!("ssl"),
    col!("ssl_protocol"),
    col!("ssl_key_exchange"),
    col!("ssl_cipher"),
    col!("ssl_hash"),
    col!("peer_cert_subject"),
    col!("peer_cert_issuer"),
    col!("peer_cert_validity"),
    col!("state"),
    col!("channels"),
    col!("protocol"),
    col!("auth_mechanism"),
    col!("user"),
    col!("vhost"),
    col!("timeout"),
    col!("frame_max"),
    col!("channel_max"),
    col!("client_properties"),
    col!("recv_oct"),
    col!("recv_cnt"),
    col!("send_oct"),
    col!("send_cnt"),
    col!("send_pend"),
    col!("connected_at"),
];

const CONSUMER_COLUMNS: &[Column] = &[
    col!("queue_name" => "queue"."name"),
    col!("channel_pid" => "channel_details"."name"),
    col!("consumer_tag"),
    col!("ack_required"),
    col!("prefetch_count"),
    col!("active"),
    col!("activity_status"),
    col!("arguments"),
];

const VHOST_COLUMNS: &[Column] = &[
    col!("name"),
    col!("description"),
    col!("tags"),
    col!("default_queue_type"),
    col!("tracing"),
    col!("cluster_state"),
];

const USER_COLUMNS: &[Column] = &[col!("user" => "name"), col!("tags")];

const PERMISSION_COLUMNS: &[Column] =
    &[col!("user"), col!("configure"), col!("write"), col!("read")];

const POLICY_COLUMNS: &[Column] = &[
    col!("vhost"),
    col!("name"),
    col!("pattern"),
    col!("apply-to"),
    col!("definition"),
    col!("priority"),
];

impl ListKind {
    /// Every column rabbitmqctl accepts for this list, in its order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            ListKind::Queues => QUEUE_COLUMNS,
            ListKind::Exchanges => EXCHANGE_COLUMNS,
            ListKind::Bindings => BINDING_COLUMNS,
            ListKind::Connections => CONNECTION_COLUMNS,
            ListKind::Consumers => CONSUMER_COLUMNS,
            ListKind::Vhosts => VHOST_COLUMNS,
            ListKind::Users => USER_COLUMNS,
            ListKind::Permissions => PERMISSION_COLUMNS,
            ListKind::Policies => POLICY_COLUMNS,
        }
    }

    /// rabbitmqctl's columns when none are given.
    pub fn default_columns(self) -> &'static [&'static str] {
        match self {
            ListKind::Queues => &["name", "messages"],
            ListKind::Exchanges => &["name", "type"],
            ListKind::Bindings => &[
                "source_name",
                "source_kind",
                "destination_name",
                "destination_kind",
                "routing_key",
                "arguments",
            ],
            ListKind::Connections => &["user", "peer_host", "peer_port", "state"],
            ListKind::Consumers => &[
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "ack_required",
                "prefetch_count",
                "active",
                "arguments",
            ],
            ListKind::Vhosts => &["name"],
            ListKind::Users => &["user", "tags"],
            ListKind::Permissions => &["user", "configure", "write", "read"],
            ListKind::Policies => &[
                "vhost",
                "name",
                "pattern",
                "apply-to",
                "definition",
                "priority",
            ],
        }
    }

    /// Whether the command takes column names (`list_users`, `list_permissions` and
    /// `list_policies` do not).
    pub fn takes_columns(self) -> bool {
        !matches!(
            self,
            ListKind::Users | ListKind::Permissions | ListKind::Policies
        )
    }

    /// The columns for the names given (rabbitmqctl's defaults when none), or a usage error
    /// naming the first unknown or unavailable one. Names may also be given comma-separated
    /// (`name,messages`), as rabbitmqctl accepts.
    pub fn select(self, names: &[String]) -> Result<Vec<Column>, CtlError> {
        let names: Vec<&str> = if names.is_empty() {
            self.default_columns().to_vec()
        } else {
            if !self.takes_columns() {
                return Err(CtlError::Usage(format!(
                    "too many arguments: this command takes no columns (got {})",
                    names.join(" ")
                )));
            }
            names
                .iter()
                .flat_map(|n| n.split(','))
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        };
        let all = self.columns();
        names
            .into_iter()
            .map(|name| match all.iter().find(|c| c.name == name) {
                Some(Column {
                    source: Source::Unavailable,
                    ..
                }) => Err(CtlError::Usage(format!(
                    "column {name} is an Erlang internal the HTTP API does not expose"
                ))),
                Some(c) => Ok(*c),
                None => {
                    let mut valid: Vec<&str> = all
                        .iter()
                        .filter(|c| c.source != Source::Unavailable)
                        .map(|c| c.name)
                        .collect();
                    valid.sort_unstable();
                    Err(CtlError::Usage(format!(
                        "Info key {name} is not valid: <column> must be one of {}",
                        valid.join(", ")
                    )))
                }
            })
            .collect()
    }
}

impl Column {
    /// This column's value in one API object (`None`: absent or null).
    pub fn value_in<'a>(&self, object: &'a serde_json::Value) -> Option<ColumnValue<'a>> {
        match self.source {
            Source::Path(path) => {
                let mut v = object;
                for seg in path {
                    v = v.get(seg)?;
                }
                (!v.is_null()).then_some(ColumnValue::Json(v))
            }
            Source::Constant(s) => Some(ColumnValue::Text(s)),
            Source::Unavailable => None,
        }
    }
}

/// A cell's value before formatting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnValue<'a> {
    /// From the API's JSON.
    Json(&'a serde_json::Value),
    /// A constant.
    Text(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(cols: &[Column]) -> Vec<&'static str> {
        cols.iter().map(|c| c.name).collect()
    }

    #[test]
    fn no_columns_gives_rabbitmqctls_defaults() {
        let cols = ListKind::Queues.select(&[]).expect("defaults");
        assert_eq!(names(&cols), ["name", "messages"]);
        let cols = ListKind::Connections.select(&[]).expect("defaults");
        assert_eq!(names(&cols), ["user", "peer_host", "peer_port", "state"]);
    }

    #[test]
    fn columns_are_taken_in_the_order_given_and_comma_separated_too() {
        let args = vec!["consumers".to_string(), "name,messages_ready".to_string()];
        let cols = ListKind::Queues.select(&args).expect("valid");
        assert_eq!(names(&cols), ["consumers", "name", "messages_ready"]);
    }

    #[test]
    fn unknown_column_is_a_usage_error_listing_the_valid_ones() {
        let err = ListKind::Exchanges
            .select(&["colour".to_string()])
            .expect_err("unknown");
        assert_eq!(err.exit_code(), 64);
        assert_eq!(
            err.to_string(),
            "Info key colour is not valid: <column> must be one of arguments, auto_delete, \
             durable, internal, name, policy, type"
        );
    }

    #[test]
    fn erlang_only_column_is_refused_by_name() {
        let err = ListKind::Queues
            .select(&["pid".to_string()])
            .expect_err("unavailable");
        assert!(err.to_string().contains("pid"), "{err}");
    }

    #[test]
    fn nested_and_constant_columns_read_the_api_object() {
        let consumer = json!({"queue": {"name": "q1", "vhost": "/"},
                              "channel_details": {"name": "c (1)"}, "consumer_tag": "t"});
        let cols = ListKind::Consumers
            .select(&["queue_name".into(), "channel_pid".into(), "active".into()])
            .expect("valid");
        assert_eq!(
            cols[0].value_in(&consumer),
            Some(ColumnValue::Json(&json!("q1")))
        );
        assert_eq!(
            cols[1].value_in(&consumer),
            Some(ColumnValue::Json(&json!("c (1)")))
        );
        assert_eq!(cols[2].value_in(&consumer), None);
        let kind = ListKind::Bindings
            .select(&["source_kind".into()])
            .expect("valid");
        assert_eq!(
            kind[0].value_in(&json!({})),
            Some(ColumnValue::Text("exchange"))
        );
    }

    #[test]
    fn list_users_takes_no_columns() {
        assert!(ListKind::Users.select(&["name".into()]).is_err());
    }
}
