//! The one error type of the crate and its exit codes.
//!
//! Every failure of a command ends here: the binary prints [`CtlError`]'s message on stderr
//! (prefixed `Error: `) and exits with [`CtlError::exit_code`], which follows rabbitmqctl's
//! (sysexits) codes: 64 usage, 65 data error, 66 no input, 67 no such user, 69 unavailable
//! (broker unreachable, or an API error rabbitmqctl would report as `{error, _}`), 70
//! software (an answer we cannot read, a thing that already exists), 75 temporary failure
//! (timeout), 77 no permission (the API refused the credentials).

/// rabbitmqctl's exit codes (RabbitMQ.CLI.Core.ExitCodes, from sysexits.h).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Bad command line.
    pub const USAGE: u8 = 64;
    /// Bad argument value (e.g. a policy definition that is not JSON, a missing vhost).
    pub const DATA_ERR: u8 = 65;
    /// An input file that cannot be read.
    pub const NO_INPUT: u8 = 66;
    /// No such user.
    pub const NO_USER: u8 = 67;
    /// The broker cannot be reached, or refused the operation.
    pub const UNAVAILABLE: u8 = 69;
    /// An answer that makes no sense, or an entity that already exists.
    pub const SOFTWARE: u8 = 70;
    /// Could not write the output.
    pub const CANT_CREATE: u8 = 73;
    /// Timed out.
    pub const TEMP_FAIL: u8 = 75;
    /// Authentication or authorisation refused.
    pub const NO_PERM: u8 = 77;
}

/// What a command's failure was about: it picks the exit code of a 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A user (404: exit 67, as rabbitmqctl's `no_such_user`).
    User,
    /// A virtual host (404: exit 65, as rabbitmqctl's `no_such_vhost`).
    Vhost,
    /// Anything else (404: exit 69, as rabbitmqctl's `{error, not_found}`).
    Other,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The command line does not make sense (beyond what clap checks).
    #[error("{0}")]
    Usage(String),
    /// An argument's value is unusable (e.g. a definition that is not JSON).
    #[error("{0}")]
    BadArgument(String),
    /// The HTTP API could not be reached.
    #[error("cannot reach the management API at {url}: {detail}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What the HTTP client said.
        detail: String,
    },
    /// The HTTP API did not answer in time.
    #[error("the management API at {url} did not answer in time")]
    Timeout {
        /// The URL tried.
        url: String,
    },
    /// The API answered with an error status.
    #[error("{method} {path}: HTTP {status}: {reason}")]
    Api {
        /// The request's method.
        method: &'static str,
        /// The request's path (percent-encoded, as sent).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The API's `reason` (or the body, or the status text).
        reason: String,
        /// What the request was about.
        subject: Subject,
    },
    /// The API's answer is not what it should be (not JSON, a field missing).
    #[error("unexpected answer from {path}: {detail}")]
    BadAnswer {
        /// The request's path.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Refused before sending: the thing already exists (`add_user` of an existing user).
    #[error("{0}")]
    AlreadyExists(String),
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The output (a file, stdout) could not be written.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        /// The file (`-` for stdout).
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl CtlError {
    /// The process exit code for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => exit::USAGE,
            CtlError::BadArgument(_) => exit::DATA_ERR,
            CtlError::Unreachable { .. } => exit::UNAVAILABLE,
            CtlError::Timeout { .. } => exit::TEMP_FAIL,
            CtlError::Api {
                status, subject, ..
            } => match (status, subject) {
                (401 | 403, _) => exit::NO_PERM,
                (404, Subject::User) => exit::NO_USER,
                (404, Subject::Vhost) => exit::DATA_ERR,
                (400, _) => exit::DATA_ERR,
                _ => exit::UNAVAILABLE,
            },
            CtlError::BadAnswer { .. } | CtlError::AlreadyExists(_) => exit::SOFTWARE,
            CtlError::ReadFile { .. } => exit::NO_INPUT,
            CtlError::WriteFile { .. } => exit::CANT_CREATE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, subject: Subject) -> CtlError {
        CtlError::Api {
            method: "GET",
            path: "/api/x".into(),
            status,
            reason: "r".into(),
            subject,
        }
    }

    #[test]
    fn exit_codes_follow_rabbitmqctl() {
        assert_eq!(api(404, Subject::User).exit_code(), 67);
        assert_eq!(api(404, Subject::Vhost).exit_code(), 65);
        assert_eq!(api(404, Subject::Other).exit_code(), 69);
        assert_eq!(api(400, Subject::Other).exit_code(), 65);
        assert_eq!(api(401, Subject::Other).exit_code(), 77);
        assert_eq!(api(500, Subject::Other).exit_code(), 69);
        let unreachable = CtlError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            detail: "refused".into(),
        };
        assert_eq!(unreachable.exit_code(), 69);
        assert_eq!(CtlError::Usage("x".into()).exit_code(), 64);
    }

    #[test]
    fn api_error_message_names_status_and_reason() {
        let e = CtlError::Api {
            method: "DELETE",
            path: "/api/users/bob".into(),
            status: 404,
            reason: "Object Not Found".into(),
            subject: Subject::User,
        };
        assert_eq!(
            e.to_string(),
            "DELETE /api/users/bob: HTTP 404: Object Not Found"
        );
    }
}
