//! The command line: global options and one subcommand per rabbitmqctl command, parsed by
//! clap (derive). Command names are rabbitmqctl's (`list_queues`, `set_policy`); options may
//! come before or after the command (`warren ctl -p app list_queues` or
//! `warren ctl list_queues -p app`), as rabbitmqctl takes them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::format::Formatter;

/// warrenctl: manage a running Warren broker through its management HTTP API, with
/// rabbitmqctl's commands and output.
#[derive(Debug, Clone, Parser)]
#[command(name = "warrenctl", version)]
pub struct CtlCli {
    /// Connection and output options.
    #[command(flatten)]
    pub options: GlobalOptions,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. (Their ids differ from every command's argument names:
/// clap merges a global option and a positional argument of the same id.)
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Base URL of the management HTTP API.
    #[arg(
        long,
        global = true,
        env = "WARREN_CTL_URL",
        default_value = "http://127.0.0.1:15672"
    )]
    pub url: String,
    /// User name (an administrator for most commands).
    #[arg(
        long = "username",
        global = true,
        env = "WARREN_CTL_USERNAME",
        default_value = "guest"
    )]
    pub api_username: String,
    /// Password.
    #[arg(
        long = "password",
        global = true,
        env = "WARREN_CTL_PASSWORD",
        default_value = "guest",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub api_password: String,
    /// Virtual host the command applies to.
    #[arg(short = 'p', long, global = true, default_value = "/")]
    pub vhost: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Formatter::Table)]
    pub formatter: Formatter,
    /// No informational banner ("Listing queues for vhost / ...").
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No banner and no table header.
    #[arg(short, long, global = true)]
    pub silent: bool,
    /// No table header line.
    #[arg(long, global = true)]
    pub no_table_headers: bool,
    /// Seconds to wait for an answer.
    #[arg(short, long, global = true, default_value_t = 60)]
    pub timeout: u64,
}

/// The commands, named as rabbitmqctl's.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List queues of the vhost [columns: name messages by default].
    #[command(name = "list_queues")]
    ListQueues(Columns),
    /// List exchanges of the vhost [columns: name type by default].
    #[command(name = "list_exchanges")]
    ListExchanges(Columns),
    /// List bindings of the vhost.
    #[command(name = "list_bindings")]
    ListBindings(Columns),
    /// List connections (all vhosts) [columns: user peer_host peer_port state by default].
    #[command(name = "list_connections")]
    ListConnections(Columns),
    /// List consumers of the vhost.
    #[command(name = "list_consumers")]
    ListConsumers(Columns),
    /// List users and their tags.
    #[command(name = "list_users")]
    ListUsers,
    /// List virtual hosts [columns: name by default].
    #[command(name = "list_vhosts")]
    ListVhosts(Columns),
    /// List user permissions in the vhost.
    #[command(name = "list_permissions")]
    ListPermissions,
    /// List policies of the vhost.
    #[command(name = "list_policies")]
    ListPolicies,
    /// Create a user (no tags, no permissions).
    #[command(name = "add_user")]
    AddUser {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// Delete a user.
    #[command(name = "delete_user")]
    DeleteUser {
        /// User name.
        username: String,
    },
    /// Change a user's password (its tags stay).
    #[command(name = "change_password")]
    ChangePassword {
        /// User name.
        username: String,
        /// New password.
        new_password: String,
    },
    /// Replace a user's tags (none given: clear them).
    #[command(name = "set_user_tags")]
    SetUserTags {
        /// User name.
        username: String,
        /// Tags (administrator, monitoring, policymaker, management, or any other).
        tags: Vec<String>,
    },
    /// Create a virtual host.
    #[command(name = "add_vhost")]
    AddVhost {
        /// Name.
        #[arg(value_name = "VHOST")]
        name: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        /// Queue type of queues declared without x-queue-type.
        #[arg(long)]
        default_queue_type: Option<String>,
    },
    /// Delete a virtual host and everything in it.
    #[command(name = "delete_vhost")]
    DeleteVhost {
        /// Name.
        #[arg(value_name = "VHOST")]
        name: String,
    },
    /// Set a user's permissions in the vhost.
    #[command(name = "set_permissions")]
    SetPermissions {
        /// User name.
        username: String,
        /// Configure pattern.
        conf: String,
        /// Write pattern.
        write: String,
        /// Read pattern.
        read: String,
    },
    /// Set a policy in the vhost.
    #[command(name = "set_policy")]
    SetPolicy {
        /// Policy name.
        name: String,
        /// Regular expression of the names it applies to.
        pattern: String,
        /// Definition, a JSON object (`{"max-length": 10}`).
        definition: String,
        /// Priority (the highest wins).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// What it applies to.
        #[arg(long, default_value = "all", value_parser = ["queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams"])]
        apply_to: String,
    },
    /// Clear a policy in the vhost.
    #[command(name = "clear_policy")]
    ClearPolicy {
        /// Policy name.
        name: String,
    },
    /// Remove every ready message of a queue.
    #[command(name = "purge_queue")]
    PurgeQueue {
        /// Queue name.
        queue: String,
    },
    /// Delete a queue.
    #[command(name = "delete_queue")]
    DeleteQueue {
        /// Queue name.
        queue: String,
        /// Only if it has no messages.
        #[arg(short = 'e', long)]
        if_empty: bool,
        /// Only if it has no consumers.
        #[arg(short = 'u', long)]
        if_unused: bool,
    },
    /// Close a connection (its name as list_connections name shows it).
    #[command(name = "close_connection")]
    CloseConnection {
        /// Connection name.
        connection: String,
        /// Reason given to the client.
        explanation: String,
    },
    /// Write the broker's definitions (JSON) to a file, or to stdout with `-`.
    #[command(name = "export_definitions")]
    ExportDefinitions {
        /// Output file, `-` for stdout.
        path: PathBuf,
    },
    /// Import definitions (JSON) from a file, or from stdin with `-` or no file.
    #[command(name = "import_definitions")]
    ImportDefinitions {
        /// Input file.
        path: Option<PathBuf>,
    },
    /// Show the broker's status (version, node, listeners, totals, alarms).
    #[command(name = "status")]
    Status,
}

/// Column names of a list command (rabbitmqctl's info items).
#[derive(Debug, Clone, Args)]
pub struct Columns {
    /// Columns to show (rabbitmqctl's info item names).
    pub columns: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> CtlCli {
        let mut argv = vec!["warrenctl"];
        argv.extend_from_slice(args);
        match CtlCli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(e) => panic!("{args:?} does not parse: {e}"),
        }
    }

    #[test]
    fn defaults_are_rabbitmqs() {
        let cli = parse(&["list_queues"]);
        assert_eq!(cli.options.url, "http://127.0.0.1:15672");
        assert_eq!(cli.options.api_username, "guest");
        assert_eq!(cli.options.api_password, "guest");
        assert_eq!(cli.options.vhost, "/");
        assert_eq!(cli.options.formatter, Formatter::Table);
        assert!(!cli.options.quiet);
        match cli.command {
            Command::ListQueues(c) => assert!(c.columns.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let before = parse(&[
            "-p",
            "app",
            "--formatter",
            "json",
            "-q",
            "list_queues",
            "name",
        ]);
        let after = parse(&[
            "list_queues",
            "name",
            "-p",
            "app",
            "--formatter",
            "json",
            "-q",
        ]);
        for cli in [before, after] {
            assert_eq!(cli.options.vhost, "app");
            assert_eq!(cli.options.formatter, Formatter::Json);
            assert!(cli.options.quiet);
            match cli.command {
                Command::ListQueues(c) => assert_eq!(c.columns, ["name"]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn set_policy_takes_priority_and_apply_to() {
        let cli = parse(&[
            "set_policy",
            "ttl",
            "^t\\.",
            r#"{"message-ttl":1000}"#,
            "--priority",
            "-2",
            "--apply-to",
            "queues",
        ]);
        match cli.command {
            Command::SetPolicy {
                name,
                pattern,
                definition,
                priority,
                apply_to,
            } => {
                assert_eq!(
                    (name.as_str(), pattern.as_str(), definition.as_str()),
                    ("ttl", "^t\\.", r#"{"message-ttl":1000}"#)
                );
                assert_eq!(priority, -2);
                assert_eq!(apply_to, "queues");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            CtlCli::try_parse_from(["warrenctl", "set_policy", "a", "b", "{}", "--apply-to", "x"])
                .is_err()
        );
    }

    #[test]
    fn command_arguments_do_not_overwrite_the_credentials_or_vhost() {
        let cli = parse(&["--username", "admin", "-p", "app", "delete_user", "bob"]);
        assert_eq!(cli.options.api_username, "admin");
        assert_eq!(cli.options.vhost, "app");
        let cli = parse(&["add_user", "bob", "bob-pass"]);
        assert_eq!(
            (
                cli.options.api_username.as_str(),
                cli.options.api_password.as_str()
            ),
            ("guest", "guest")
        );
        match parse(&["-p", "app", "add_vhost", "other"]) {
            CtlCli {
                options,
                command: Command::AddVhost { name, .. },
            } => assert_eq!((options.vhost.as_str(), name.as_str()), ("app", "other")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_argument_is_an_error() {
        assert!(CtlCli::try_parse_from(["warrenctl", "add_user", "bob"]).is_err());
        assert!(CtlCli::try_parse_from(["warrenctl"]).is_err());
        assert!(CtlCli::try_parse_from(["warrenctl", "no_such_command"]).is_err());
    }

    #[test]
    fn delete_queue_takes_if_empty_and_if_unused() {
        match parse(&["delete_queue", "q", "-e", "--if-unused"]).command {
            Command::DeleteQueue {
                queue,
                if_empty,
                if_unused,
            } => assert_eq!((queue.as_str(), if_empty, if_unused), ("q", true, true)),
            other => panic!("{other:?}"),
        }
    }
}
