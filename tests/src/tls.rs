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
    /// The server's certificate chain (its certificate, then the CA's), PEM.
    pub server_chain_pem: String,
    /// The server's private key, PKCS#8 PEM.
    pub server_key_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl TestPki {
    /// A fresh CA and server certificate for 127.0.0.1 and localhost.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // rcgen names every certificate alike by default; a leaf named as
        // its issuer looks self-signed to OpenSSL's clients.
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Sepia test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        server_params.distinguished_name = rcgen::DistinguishedName::new();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "127.0.0.1");
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
            server_chain_pem: format!("{}{}", server.pem(), ca.pem()),
            server_key_pem: server_key.serialize_pem(),
            ca,
            ca_key,
        }
    }

    /// The server's configuration, requiring a client certificate this CA
    /// signed (a backend that wants mTLS).
    pub fn server_config_requiring_clients(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA pem"))
            .expect("CA");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.server_chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).expect("key");
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .expect("server config"),
        )
    }

    /// A client certificate for `name` signed by this CA: (certificate PEM,
    /// private key PEM).
    pub fn client_cert(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("client certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
