//! Who is asking: HTTP basic authentication against the broker's users, and RabbitMQ's
//! tag rules for what a user of the management API may see and change.
//!
//! Every `/api` handler takes an [`AuthUser`]; extracting it checks the password, the
//! loopback-only rule (`loopback_users`, e.g. `guest`) and that the user has one of the
//! management tags (`administrator`, `monitoring`, `policymaker`, `management`), with
//! RabbitMQ's 401 bodies. Handlers then ask for the rule they need (`require_admin`,
//! `require_vhost`...), which RabbitMQ words the same way.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;

use crate::error::ApiError;
use crate::state::ApiState;

/// An authenticated management user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
}

impl AuthUser {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// `administrator`.
    pub fn is_admin(&self) -> bool {
        self.has("administrator")
    }

    /// `monitoring` or `administrator`: sees every vhost's objects and every connection.
    pub fn is_monitor(&self) -> bool {
        self.is_admin() || self.has("monitoring")
    }

    /// `policymaker` or `administrator`.
    pub fn is_policymaker(&self) -> bool {
        self.is_admin() || self.has("policymaker")
    }

    /// Only administrators (users, vhosts, permissions, limits, definitions...).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::not_authorised("Not administrator user"))
        }
    }

    /// Monitoring users and administrators (node-wide views).
    pub fn require_monitor(&self) -> Result<(), ApiError> {
        if self.is_monitor() {
            Ok(())
        } else {
            Err(ApiError::not_authorised("Not monitor user"))
        }
    }

    /// May this user act in `vhost`? Administrators may; others need permissions there
    /// (RabbitMQ's `is_authorized_vhost`). A missing vhost is the handler's 404.
    pub fn require_vhost(&self, state: &ApiState, vhost: &str) -> Result<(), ApiError> {
        if self.is_admin() || self.logs_into(state, vhost) {
            Ok(())
        } else {
            Err(ApiError::not_authorised(
                "User not authorised to access virtual host",
            ))
        }
    }

    /// May this user see `vhost`'s objects? Monitors see every vhost.
    pub fn require_vhost_visible(&self, state: &ApiState, vhost: &str) -> Result<(), ApiError> {
        if self.is_monitor() || self.logs_into(state, vhost) {
            Ok(())
        } else {
            Err(ApiError::not_authorised(
                "User not authorised to access virtual host",
            ))
        }
    }

    /// Policies and parameters of `vhost`: administrators, or policymakers with access.
    pub fn require_policies(&self, state: &ApiState, vhost: &str) -> Result<(), ApiError> {
        if self.is_admin() || (self.has("policymaker") && self.logs_into(state, vhost)) {
            Ok(())
        } else {
            Err(ApiError::not_authorised(
                "User not authorised to access object",
            ))
        }
    }

    /// Global parameters: policymakers (and administrators).
    pub fn require_policymaker(&self) -> Result<(), ApiError> {
        if self.is_policymaker() {
            Ok(())
        } else {
            Err(ApiError::not_authorised(
                "User not authorised to access object",
            ))
        }
    }

    /// Does the user have permissions in `vhost` (may it log into it)?
    pub fn logs_into(&self, state: &ApiState, vhost: &str) -> bool {
        state.broker.access().read(|s| {
            s.permissions
                .contains_key(&(vhost.to_owned(), self.name.clone()))
        })
    }

    /// Which vhosts' objects this user sees in listings: all for monitors, else those
    /// it has permissions in.
    pub fn sees_vhost(&self, state: &ApiState, vhost: &str) -> bool {
        self.is_monitor() || self.logs_into(state, vhost)
    }
}

/// `user:password` from an `Authorization: Basic ...` header.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

impl FromRequestParts<ApiState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some((name, password)) = basic_credentials(parts) else {
            return Err(ApiError::login_failed());
        };
        let Some(record) = state.broker.access().user(&name) else {
            tracing::warn!(user = %name, "HTTP access denied: no such user");
            return Err(ApiError::login_failed());
        };
        if !record.password.verify(&password) {
            tracing::warn!(user = %name, "HTTP access denied: wrong password");
            return Err(ApiError::login_failed());
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let loopback_only = state.broker.config().loopback_users.contains(&name);
        if loopback_only && !peer.is_some_and(|ip| ip.is_loopback()) {
            tracing::warn!(user = %name, peer = ?peer, "HTTP access denied: user can only log in via localhost");
            return Err(ApiError::not_authorised(
                "User can only log in via localhost",
            ));
        }
        let user = AuthUser {
            name,
            tags: record.tags,
        };
        let management = ["administrator", "monitoring", "policymaker", "management"];
        if !management.iter().any(|t| user.has(t)) {
            tracing::warn!(user = %user.name, "HTTP access denied: not a management user");
            return Err(ApiError::not_authorised("Not management user"));
        }
        Ok(user)
    }
}
