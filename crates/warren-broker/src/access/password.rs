//! Password hashes exactly as RabbitMQ's internal backend stores them, so that a user's hash
//! moves between RabbitMQ and Warren in a definitions file and keeps verifying.
//!
//! A hash is `salt ++ H(salt ++ utf8(password))` with a 4-byte random salt, base64-encoded in
//! definitions (`password_hash`), and `H` named by `hashing_algorithm`:
//! `rabbit_password_hashing_sha256` (RabbitMQ's default and Warren's), `..._sha512` or
//! `..._md5` (RabbitMQ's legacy default, which it also assumes when a user has no algorithm).
//! An empty hash means "no password": such a user can only log in with EXTERNAL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// A hashing algorithm of RabbitMQ's internal backend, by its module name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum HashingAlgorithm {
    /// `rabbit_password_hashing_sha256`.
    #[default]
    #[serde(rename = "rabbit_password_hashing_sha256")]
    Sha256,
    /// `rabbit_password_hashing_sha512`.
    #[serde(rename = "rabbit_password_hashing_sha512")]
    Sha512,
    /// `rabbit_password_hashing_md5`.
    #[serde(rename = "rabbit_password_hashing_md5")]
    Md5,
}

impl HashingAlgorithm {
    /// RabbitMQ's module name.
    pub fn as_str(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
            HashingAlgorithm::Md5 => "rabbit_password_hashing_md5",
        }
    }

    /// The algorithm named `name` (RabbitMQ's module name).
    pub fn from_name(name: &str) -> Option<HashingAlgorithm> {
        match name {
            "rabbit_password_hashing_sha256" => Some(HashingAlgorithm::Sha256),
            "rabbit_password_hashing_sha512" => Some(HashingAlgorithm::Sha512),
            "rabbit_password_hashing_md5" => Some(HashingAlgorithm::Md5),
            _ => None,
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => Sha256::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Sha512 => Sha512::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
            HashingAlgorithm::Md5 => Md5::new()
                .chain_update(salt)
                .chain_update(password)
                .finalize()
                .to_vec(),
        }
    }
}

/// A stored password: algorithm and `salt ++ digest` (empty = no password).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PasswordHash {
    /// Base64 of `salt ++ digest`, as in RabbitMQ's definitions; empty for no password.
    pub password_hash: String,
    /// The algorithm.
    pub hashing_algorithm: HashingAlgorithm,
}

impl PasswordHash {
    /// Hash `password` with a fresh random salt.
    pub fn new(algorithm: HashingAlgorithm, password: &str) -> PasswordHash {
        let salt: [u8; 4] = rand::random();
        let mut raw = salt.to_vec();
        raw.extend_from_slice(&algorithm.digest(&salt, password.as_bytes()));
        PasswordHash {
            password_hash: STANDARD.encode(raw),
            hashing_algorithm: algorithm,
        }
    }

    /// No password: only EXTERNAL logins.
    pub fn none() -> PasswordHash {
        PasswordHash::default()
    }

    /// A hash imported from a definitions file; `None` if it is not valid base64 of at least
    /// a salt. An empty string is "no password".
    pub fn imported(hash: &str, algorithm: HashingAlgorithm) -> Option<PasswordHash> {
        if !hash.is_empty() {
            let raw = STANDARD.decode(hash).ok()?;
            if raw.len() <= 4 {
                return None;
            }
        }
        Some(PasswordHash {
            password_hash: hash.to_owned(),
            hashing_algorithm: algorithm,
        })
    }

    /// Whether the user has a password at all.
    pub fn is_set(&self) -> bool {
        !self.password_hash.is_empty()
    }

    /// Does `password` match? Always false without a stored password or for a blank one
    /// (RabbitMQ refuses blank passwords outright).
    pub fn verify(&self, password: &str) -> bool {
        if password.is_empty() || !self.is_set() {
            return false;
        }
        let Ok(raw) = STANDARD.decode(&self.password_hash) else {
            return false;
        };
        let Some((salt, stored)) = raw.split_at_checked(4) else {
            return false;
        };
        let computed = self.hashing_algorithm.digest(salt, password.as_bytes());
        // Compare without an early exit, so timing says nothing about the prefix.
        computed.len() == stored.len()
            && computed
                .iter()
                .zip(stored)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_hash_verifies_its_password_and_nothing_else() {
        for algorithm in [
            HashingAlgorithm::Sha256,
            HashingAlgorithm::Sha512,
            HashingAlgorithm::Md5,
        ] {
            let hash = PasswordHash::new(algorithm, "s3cret");
            assert!(hash.verify("s3cret"));
            assert!(!hash.verify("s3cret "));
            assert!(!hash.verify(""));
        }
    }

    #[test]
    fn hashes_in_rabbitmqs_format_verify() {
        // salt 0x908DC60A ++ H(salt ++ "guest"), computed independently with Python's hashlib.
        for (hash, algorithm) in [
            (
                "kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe",
                HashingAlgorithm::Sha256,
            ),
            (
                "kI3GCrf65LdSkFyP8BVa8fB/67dDZ7ljrRF4WEjLDwWuHFxFQjgE88vc4EqLc8+dW4j5onKsGl4Ty32Icokl1iJrRxk=",
                HashingAlgorithm::Sha512,
            ),
            ("kI3GCsLphS59YDqYemSoxQGij64=", HashingAlgorithm::Md5),
        ] {
            let stored = PasswordHash::imported(hash, algorithm).expect("valid base64");
            assert!(stored.verify("guest"), "{algorithm:?}");
            assert!(!stored.verify("Guest"), "{algorithm:?}");
        }
    }

    #[test]
    fn a_user_without_a_password_never_verifies() {
        assert!(!PasswordHash::none().verify("anything"));
        assert!(!PasswordHash::none().verify(""));
    }

    #[test]
    fn garbage_hashes_are_refused_at_import() {
        assert!(PasswordHash::imported("not base64!", HashingAlgorithm::Sha256).is_none());
        assert!(PasswordHash::imported("AAAA", HashingAlgorithm::Sha256).is_none());
        assert!(PasswordHash::imported("", HashingAlgorithm::Md5).is_some());
    }
}
