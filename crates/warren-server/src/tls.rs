//! TLS for the amqps listener: what the server needs to accept TLS connections and to
//! name the user of a client certificate.
//!
//! [`TlsConfig`] holds RabbitMQ's `ssl_options` in Warren's words: PEM certificate chain
//! and key files, an optional CA bundle, `verify_peer` and `fail_if_no_peer_cert` with
//! RabbitMQ's meaning, and where a certificate's user name comes from
//! (`ssl_cert_login_from`). [`TlsConfig::load`] reads the files once, at start-up, into a
//! [`Tls`] (a rustls server configuration on the `ring` provider, TLS 1.2 and 1.3 only);
//! every error names the file at fault.
//!
//! - `verify_peer = false`: no client certificate is asked for.
//! - `verify_peer = true, fail_if_no_peer_cert = false`: a client certificate is optional,
//!   but one that is presented must chain to the CA bundle, or the handshake fails.
//! - `verify_peer = true, fail_if_no_peer_cert = true`: a client without a certificate
//!   is refused during the handshake.
//!
//! [`cert_login_name`] turns a verified client certificate into the user name of SASL
//! EXTERNAL: its subject's common name (several are joined with ","), or its whole
//! distinguished name formatted as RabbitMQ formats it (RFC 4514 order and escaping:
//! `CN=client,O=Warren,C=GB`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Where EXTERNAL takes the user name from (RabbitMQ's `ssl_cert_login_from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertLoginFrom {
    /// The subject's common name (CN): RabbitMQ's `common_name`.
    #[default]
    CommonName,
    /// The whole subject, RFC 4514 style: RabbitMQ's `distinguished_name`.
    DistinguishedName,
}

/// The amqps listener's settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address the amqps listener binds (RabbitMQ's default port is 5671).
    pub listen: std::net::SocketAddr,
    /// The server's certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates client certificates must chain to, PEM (needed for `verify_peer`).
    pub ca_file: Option<PathBuf>,
    /// Ask clients for a certificate and verify the ones presented.
    pub verify_peer: bool,
    /// With `verify_peer`: refuse clients that present no certificate.
    pub fail_if_no_peer_cert: bool,
    /// Where EXTERNAL takes the user name from.
    pub cert_login_from: CertLoginFrom,
}

/// Why the TLS settings cannot be used. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {kind} file {}: {source}", path.display())]
    Read {
        /// Which setting ("certificate", "key", "CA").
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{kind} file {} is not valid PEM: {source}", path.display())]
    Pem {
        /// Which setting.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{kind} file {} holds no PEM certificate", path.display())]
    NoCertificate {
        /// Which setting.
        kind: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key.
    #[error("key file {} holds no PEM private key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate could not be used as a trust anchor.
    #[error("CA file {} holds an unusable certificate: {source}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The certificate chain and key do not make a usable server identity (key does
    /// not match the certificate, unsupported key type, unparsable certificate).
    #[error("certificate file {} and key file {} do not fit: {source}", cert.display(), key.display())]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// `verify_peer` without a CA file: nothing to verify client certificates against.
    #[error("tls_verify_peer needs tls_ca_file (the CAs client certificates must chain to)")]
    VerifyPeerWithoutCa,
    /// `fail_if_no_peer_cert` without `verify_peer`: no certificate is asked for.
    #[error("tls_fail_if_no_peer_cert needs tls_verify_peer")]
    FailIfNoPeerCertWithoutVerifyPeer,
    /// The client verifier could not be built (e.g. an empty CA bundle).
    #[error("CA file {}: {source}", path.display())]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the protocol versions (cannot happen with the ring provider).
    #[error("TLS set-up failed: {0}")]
    Setup(rustls::Error),
}

/// The loaded TLS settings, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) verify_peer: bool,
    pub(crate) cert_login_from: CertLoginFrom,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("verify_peer", &self.verify_peer)
            .field("cert_login_from", &self.cert_login_from)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Read the files and build the rustls configuration.
    pub fn load(&self) -> Result<Tls, TlsError> {
        if self.fail_if_no_peer_cert && !self.verify_peer {
            return Err(TlsError::FailIfNoPeerCertWithoutVerifyPeer);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Setup)?;
        let builder = if self.verify_peer {
            let ca_file = self.ca_file.as_ref().ok_or(TlsError::VerifyPeerWithoutCa)?;
            let mut roots = RootCertStore::empty();
            for cert in read_certs("CA", ca_file)? {
                roots.add(cert).map_err(|source| TlsError::BadCa {
                    path: ca_file.clone(),
                    source,
                })?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if !self.fail_if_no_peer_cert {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|source| TlsError::Verifier {
                path: ca_file.clone(),
                source,
            })?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let certs = read_certs("certificate", &self.cert_file)?;
        let key = read_key(&self.key_file)?;
        let mut config =
            builder
                .with_single_cert(certs, key)
                .map_err(|source| TlsError::Identity {
                    cert: self.cert_file.clone(),
                    key: self.key_file.clone(),
                    source,
                })?;
        // AMQP over TLS has no ALPN identifier; clients do not send one.
        config.alpn_protocols.clear();
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            verify_peer: self.verify_peer,
            cert_login_from: self.cert_login_from,
        })
    }
}

fn read_file(kind: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        kind,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(kind: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(kind, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            kind,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            kind,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        source => TlsError::Pem {
            kind: "key",
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Why a client certificate gives no user name (RabbitMQ's refusal reasons).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertLoginError {
    /// The connection is not TLS.
    #[error("not a TLS-enabled connection")]
    NotTls,
    /// The client presented no certificate.
    #[error("connection peer presented no TLS (x.509) certificate")]
    NoCertificate,
    /// The certificate has no usable name (no CN, or not parsable).
    #[error("no name found")]
    NoName,
}

/// The user name a client certificate (DER) stands for.
pub fn cert_login_name(der: &[u8], from: CertLoginFrom) -> Result<String, CertLoginError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertLoginError::NoName)?;
    let subject = cert.subject();
    match from {
        CertLoginFrom::CommonName => {
            let names: Vec<&str> = subject
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .collect();
            if names.is_empty() {
                return Err(CertLoginError::NoName);
            }
            Ok(names.join(","))
        }
        CertLoginFrom::DistinguishedName => {
            let rdns: Vec<String> = subject
                .iter()
                .map(|rdn| {
                    rdn.iter()
                        .map(|attr| {
                            let oid = attr.attr_type().to_id_string();
                            let value = match attr.as_str() {
                                Ok(s) => escape_rdn_value(s),
                                Err(_) => format!("#{}", hex(attr.attr_value().data)),
                            };
                            format!("{}={value}", attribute_name(&oid).unwrap_or(&oid))
                        })
                        .collect::<Vec<_>>()
                        .join("+")
                })
                .collect();
            if rdns.is_empty() {
                return Err(CertLoginError::NoName);
            }
            // RabbitMQ lists the RDNs last first, as RFC 4514 does.
            Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
        }
    }
}

/// RabbitMQ's names for subject attributes (`rabbit_cert_info:format_rdn`); others are
/// written as their dotted OID.
fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.4" => "SN",
        "2.5.4.42" => "GIVENNAME",
        "2.5.4.43" => "INITIALS",
        "2.5.4.44" => "GENERATIONQUALIFIER",
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "TITLE",
        "2.5.4.6" => "C",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.65" => "PSEUDONYM",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "EMAILADDRESS",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 4514 escaping as RabbitMQ does it: a leading space or '#', a trailing space and
/// `"+,;<>\` get a backslash; bytes outside printable ASCII become `\XX`.
fn escape_rdn_value(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == bytes.len();
        match b {
            b' ' | b'#' if first => {
                out.push('\\');
                out.push(char::from(b));
            }
            b' ' if last => out.push_str("\\ "),
            b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b if !(32..126).contains(&b) => out.push_str(&format!("\\{b:02X}")),
            b => out.push(char::from(b)),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdn_values_are_escaped_as_rabbitmq_escapes_them() {
        assert_eq!(escape_rdn_value("plain"), "plain");
        assert_eq!(escape_rdn_value(" lead"), "\\ lead");
        assert_eq!(escape_rdn_value("#hash"), "\\#hash");
        assert_eq!(escape_rdn_value("trail "), "trail\\ ");
        assert_eq!(escape_rdn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rdn_value("é"), "\\C3\\A9");
    }

    #[test]
    fn fail_if_no_peer_cert_without_verify_peer_is_refused() {
        let config = TlsConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_file: "cert.pem".into(),
            key_file: "key.pem".into(),
            ca_file: None,
            verify_peer: false,
            fail_if_no_peer_cert: true,
            cert_login_from: CertLoginFrom::CommonName,
        };
        assert!(matches!(
            config.load(),
            Err(TlsError::FailIfNoPeerCertWithoutVerifyPeer)
        ));
    }

    #[test]
    fn missing_certificate_file_is_named_in_the_error() {
        let config = TlsConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_file: "/nonexistent/warren-cert.pem".into(),
            key_file: "/nonexistent/warren-key.pem".into(),
            ca_file: None,
            verify_peer: false,
            fail_if_no_peer_cert: false,
            cert_login_from: CertLoginFrom::CommonName,
        };
        let err = config
            .load()
            .map(|_| ())
            .expect_err("loaded a missing file");
        assert!(
            err.to_string().contains("/nonexistent/warren-cert.pem"),
            "{err}"
        );
    }
}
