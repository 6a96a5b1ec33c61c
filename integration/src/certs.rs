//! Certificates for TLS tests, generated at run time with rcgen (no key material is
//! committed): a CA, a server certificate for `localhost` / `127.0.0.1` signed by it, and
//! client certificates with a chosen CN, signed by it or by a CA the broker does not know.
//! Everything is also written as PEM files into a temp dir, for the broker's settings
//! and for clients (pika) that read files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// A certificate and its key, as PEM text and as files.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate's file.
    pub cert_file: PathBuf,
    /// The key's file.
    pub key_file: PathBuf,
}

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Warren tests");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca { cert, key }
    }

    fn issue(&self, params: CertificateParams) -> (Certificate, KeyPair) {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        (cert, key)
    }
}

/// A test PKI in a temp dir; see the module docs.
pub struct TestPki {
    dir: TempDir,
    ca: Ca,
    other_ca: Ca,
    /// The CA bundle (PEM) the broker trusts and clients verify the server with.
    pub ca_pem: String,
    /// Its file.
    pub ca_file: PathBuf,
    /// The server's certificate (`localhost`, `127.0.0.1`) and key.
    pub server: Identity,
}

impl TestPki {
    /// Generate the CA and the server certificate.
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let ca = Ca::new("Warren test CA");
        let other_ca = Ca::new("Unknown CA");
        let ca_pem = ca.cert.pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write CA");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (cert, key) = ca.issue(params);
        let server = write_identity(dir.path(), "server", &cert, &key);
        TestPki {
            dir,
            ca,
            other_ca,
            ca_pem,
            ca_file,
            server,
        }
    }

    /// A client certificate with subject `CN=<cn>, O=Warren tests`, signed by the CA.
    pub fn client(&self, cn: &str) -> Identity {
        let (cert, key) = self.ca.issue(client_params(cn));
        write_identity(self.dir.path(), &format!("client-{cn}"), &cert, &key)
    }

    /// A client certificate signed by a CA the broker does not trust.
    pub fn untrusted_client(&self, cn: &str) -> Identity {
        let (cert, key) = self.other_ca.issue(client_params(cn));
        write_identity(self.dir.path(), &format!("untrusted-{cn}"), &cert, &key)
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn client_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    // rcgen starts every subject with a CN of its own; start empty so that the order is
    // C, O, CN (RabbitMQ writes it back to front: CN=..,O=..,C=GB).
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "GB");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Warren tests");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn write_identity(dir: &Path, name: &str, cert: &Certificate, key: &KeyPair) -> Identity {
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let cert_file = dir.join(format!("{name}-cert.pem"));
    let key_file = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert_file, &cert_pem).expect("write certificate");
    std::fs::write(&key_file, &key_pem).expect("write key");
    Identity {
        cert_pem,
        key_pem,
        cert_file,
        key_file,
    }
}
