//! Client-side TLS: one rustls configuration builder for backend calls and
//! for the HTTP fetches plugins ask for. Always built with an explicit
//! provider (aws-lc-rs): with two providers in the dependency graph the
//! implicit default panics.

use std::sync::Arc;

use rustls::{
    crypto::{aws_lc_rs, CryptoProvider},
    ClientConfig, RootCertStore,
};

/// What a TLS client configuration is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Extra trusted roots, PEM.
    pub extra_roots_pem: Vec<u8>,
    /// Cipher suites as IANA IDs; empty for the provider's defaults.
    pub cipher_suites: Vec<u16>,
    /// SPKI SHA-256 pins (base64 URL-safe, padded).
    pub pins_sha256: Vec<String>,
    /// Skip certificate verification.
    pub skip_verify: bool,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A cipher suite ID rustls does not implement.
    #[error("cipher suite {id} (0x{id:04X}) is not supported; supported: {supported}")]
    UnsupportedCipherSuite {
        /// The IANA ID.
        id: u16,
        /// The IDs that are supported, comma separated.
        supported: String,
    },
    /// The extra roots are not PEM certificates.
    #[error("the extra CA certificates are not valid PEM: {0}")]
    BadRoots(String),
    /// rustls refused the combination.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// A feature this build does not have yet.
    #[error("{0} is not supported by this gateway yet")]
    NotYet(&'static str),
}

fn provider(cipher_suites: &[u16]) -> Result<CryptoProvider, TlsError> {
    let mut provider = aws_lc_rs::default_provider();
    if cipher_suites.is_empty() {
        return Ok(provider);
    }
    let mut chosen = Vec::with_capacity(cipher_suites.len());
    for id in cipher_suites {
        match provider
            .cipher_suites
            .iter()
            .find(|s| u16::from(s.suite()) == *id)
        {
            Some(suite) => chosen.push(*suite),
            None => {
                return Err(TlsError::UnsupportedCipherSuite {
                    id: *id,
                    supported: provider
                        .cipher_suites
                        .iter()
                        .map(|s| u16::from(s.suite()).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

fn roots(extra_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    // A machine without system roots still works for http:// backends and
    // for https:// ones trusted through extra roots; unreadable entries are
    // skipped as every TLS client does.
    let native = rustls_native_certs::load_native_certs();
    let _ = store.add_parsable_certificates(native.certs);
    if !extra_pem.is_empty() {
        let mut reader = extra_pem;
        let mut added = 0;
        for cert in rustls_pemfile_certs(&mut reader)? {
            store
                .add(cert)
                .map_err(|e| TlsError::BadRoots(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::BadRoots("no CERTIFICATE block found".into()));
        }
    }
    Ok(store)
}

fn rustls_pemfile_certs(
    reader: &mut &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadRoots(e.to_string()))
}

/// Builds a client configuration: TLS 1.2 minimum, system roots plus the
/// extra ones, the chosen cipher suites.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    if settings.skip_verify || !settings.pins_sha256.is_empty() {
        return Err(TlsError::NotYet(
            "certificate pinning and skipping verification",
        ));
    }
    let provider = Arc::new(provider(&settings.cipher_suites)?);
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots(&settings.extra_roots_pem)?)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cipher_suites_map_and_unknown_ones_are_named() {
        let config = client_config(&TlsSettings {
            cipher_suites: vec![0xC02F, 0x1301],
            ..Default::default()
        });
        assert!(config.is_ok(), "{:?}", config.err());
        let err = client_config(&TlsSettings {
            cipher_suites: vec![0x0005],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("cipher suite 5 (0x0005)"), "{err}");
    }

    #[test]
    fn garbage_roots_are_refused() {
        let err = client_config(&TlsSettings {
            extra_roots_pem: b"not a certificate".to_vec(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");
    }
}
