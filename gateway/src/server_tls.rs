//! HTTPS for the gateway's listener: a rustls configuration from KrakenD's
//! `tls` settings, with lura's defaults (its curves and TLS 1.2 suites, the
//! versions of the file's generation) and HTTP/2 offered through ALPN, as
//! Go's server offers it. Everything is read and checked at start-up, so a
//! missing file or a key that does not match its certificate stops the
//! gateway with the setting's JSON path instead of failing handshakes.

use std::sync::Arc;

use rustls::{
    crypto::{aws_lc_rs, CryptoProvider, SupportedKxGroup},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
    ServerConfig, SupportedCipherSuite,
};
use sepia_config::{ServerTls, TlsVersion};

use crate::upstream::tls::{roots_with, rustls_pemfile_certs, TlsError};

/// Why HTTPS could not be set up; each names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A file could not be read.
    #[error("{setting} {file:?} cannot be read: {source}")]
    Read {
        setting: String,
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{setting} {file:?} {reason}")]
    Pem {
        setting: String,
        file: String,
        reason: String,
    },
    /// A key rustls cannot use, or that does not match its certificate.
    #[error("{setting}: {source}")]
    Key {
        setting: String,
        #[source]
        source: rustls::Error,
    },
    /// The suites or curves leave nothing to negotiate with.
    #[error("{setting}: {reason}")]
    Unusable { setting: String, reason: String },
    /// The client roots are unusable.
    #[error("tls.ca_certs: {0}")]
    Roots(#[source] TlsError),
    /// rustls refused the whole.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a warning-worthy choice was (a setting Sepia cannot honour in full).
pub type Warnings = Vec<String>;

/// lura's default curves, P-521, P-384, P-256; rustls has no P-521, so the
/// other two remain.
const LURA_CURVES: &[u16] = &[25, 24, 23];

/// lura's default TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20.
const LURA_SUITES: &[u16] = &[0xc02f, 0xc02b, 0xc030, 0xc02c, 0xcca8, 0xcca9];

/// Builds the server configuration, with what was left out of the file's
/// lists (unsupported suites or curves) as warnings.
pub fn server_config(tls: &ServerTls) -> Result<(Arc<ServerConfig>, Warnings), ServerTlsError> {
    let mut warnings = Vec::new();
    let provider = Arc::new(provider(tls, &mut warnings)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let mut keys = Vec::with_capacity(tls.keys.len());
    let mut own_certs_pem = Vec::new();
    for pair in &tls.keys {
        let at = &pair.json_path;
        let cert_pem = read(&format!("{at}.public_key"), &pair.public_key)?;
        let certs = certificates(&format!("{at}.public_key"), &pair.public_key, &cert_pem)?;
        let key_pem = read(&format!("{at}.private_key"), &pair.private_key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| ServerTlsError::Pem {
            setting: format!("{at}.private_key"),
            file: pair.private_key.clone(),
            reason: format!("holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| ServerTlsError::Key {
                setting: format!("{at}.private_key"),
                source,
            })?;
        let certified = CertifiedKey::new(certs, signing);
        certified
            .keys_match()
            .map_err(|source| ServerTlsError::Key {
                setting: format!("{at}.private_key does not match {at}.public_key"),
                source,
            })?;
        keys.push(Arc::new(certified));
        own_certs_pem.extend_from_slice(&cert_pem);
        own_certs_pem.push(b'\n');
    }
    let builder = if tls.enable_mtls {
        // lura trusts the system's roots (unless disabled), `ca_certs` and
        // the server's own certificates for client certificates.
        let mut extra = own_certs_pem;
        for (i, file) in tls.ca_certs.iter().enumerate() {
            extra.extend_from_slice(&read(&format!("tls.ca_certs[{i}]"), file)?);
            extra.push(b'\n');
        }
        let roots =
            roots_with(!tls.disable_system_ca_pool, &extra).map_err(ServerTlsError::Roots)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ServerTlsError::Unusable {
                setting: "tls.enable_mtls".into(),
                reason: format!("no root to check client certificates with: {e}"),
            })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(Arc::new(ByServerName { keys }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), warnings))
}

fn read(setting: &str, file: &str) -> Result<Vec<u8>, ServerTlsError> {
    std::fs::read(file).map_err(|source| ServerTlsError::Read {
        setting: setting.to_owned(),
        file: file.to_owned(),
        source,
    })
}

fn certificates(
    setting: &str,
    file: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    let mut reader = pem;
    let certs = rustls_pemfile_certs(&mut reader).map_err(|e| ServerTlsError::Pem {
        setting: setting.to_owned(),
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(ServerTlsError::Pem {
            setting: setting.to_owned(),
            file: file.to_owned(),
            reason: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The provider with the file's suites and curves, in its order. Go always
/// offers its TLS 1.3 suites (its list only chooses among TLS 1.2 ones), so
/// rustls's TLS 1.3 suites stay.
fn provider(tls: &ServerTls, warnings: &mut Warnings) -> Result<CryptoProvider, ServerTlsError> {
    let mut provider = aws_lc_rs::default_provider();
    let wanted_suites = if tls.cipher_suites.is_empty() {
        LURA_SUITES
    } else {
        &tls.cipher_suites
    };
    let mut suites: Vec<SupportedCipherSuite> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    let mut tls12 = 0;
    for id in wanted_suites {
        let found = aws_lc_rs::ALL_CIPHER_SUITES
            .iter()
            .find(|s| u16::from(s.suite()) == *id);
        match found {
            Some(suite) if suite.version() == &rustls::version::TLS12 => {
                suites.push(*suite);
                tls12 += 1;
            }
            // A TLS 1.3 suite: always offered, as by Go.
            Some(_) => {}
            None => warnings.push(format!(
                "tls.cipher_suites: {id} (0x{id:04X}) is not offered: Sepia serves only ECDHE suites with AES-GCM or ChaCha20-Poly1305"
            )),
        }
    }
    if tls12 == 0 && tls.min_version == TlsVersion::Tls12 && tls.max_version == TlsVersion::Tls12 {
        return Err(ServerTlsError::Unusable {
            setting: "tls.cipher_suites".into(),
            reason: "none of the listed suites can be offered, and TLS 1.2 is the only version allowed: list ECDHE suites with AES-GCM or ChaCha20-Poly1305 (such as 49199, 49195)".into(),
        });
    }
    provider.cipher_suites = suites;
    let wanted_curves = if tls.curve_preferences.is_empty() {
        LURA_CURVES
    } else {
        &tls.curve_preferences
    };
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for id in wanted_curves {
        match aws_lc_rs::ALL_KX_GROUPS
            .iter()
            .find(|g| u16::from(g.name()) == *id)
        {
            Some(group) => groups.push(*group),
            None if tls.curve_preferences.is_empty() => {}
            None => warnings.push(format!(
                "tls.curve_preferences: {id} is not offered (supported: 23 P-256, 24 P-384, 29 X25519, 4588 X25519MLKEM768)"
            )),
        }
    }
    if groups.is_empty() {
        return Err(ServerTlsError::Unusable {
            setting: "tls.curve_preferences".into(),
            reason: "none of the listed curves can be offered: list 23 (P-256), 24 (P-384) or 29 (X25519)".into(),
        });
    }
    provider.kx_groups = groups;
    Ok(provider)
}

/// Picks the certificate a client's server name (SNI) matches, else the
/// first, as Go's server does.
#[derive(Debug)]
struct ByServerName {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.keys.len() > 1 {
            if let Some(name) = hello
                .server_name()
                .and_then(|n| rustls::pki_types::ServerName::try_from(n.to_owned()).ok())
            {
                let matching = self.keys.iter().find(|key| {
                    key.end_entity_cert()
                        .ok()
                        .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                        .is_some_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
                });
                if let Some(key) = matching {
                    return Some(key.clone());
                }
            }
        }
        self.keys.first().cloned()
    }
}
