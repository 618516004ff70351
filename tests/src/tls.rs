//! A throw-away PKI for https tests: a CA, a server certificate for
//! 127.0.0.1 signed by it, and the server's SPKI pin.

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE, Engine};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and one server certificate.
pub struct TestPki {
    /// The CA certificate, PEM (what `jwk_local_ca` points at).
    pub ca_pem: String,
    /// The server's pin: base64 URL-safe padded SHA-256 of its SPKI.
    pub server_pin: String,
    /// The server configuration.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestPki {
    /// A fresh CA and server certificate for 127.0.0.1 and localhost.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        let server = server_params
            .signed_by(&server_key, &ca, &ca_key)
            .expect("server certificate");
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &server_key.public_key_der());
        let server_pin = URL_SAFE.encode(digest.as_ref());
        let chain = vec![
            CertificateDer::from(server.der().to_vec()),
            CertificateDer::from(ca.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Self {
            ca_pem: ca.pem(),
            server_pin,
            server_config: Arc::new(server_config),
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
