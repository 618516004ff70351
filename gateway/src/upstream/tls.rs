//! Client-side TLS: one rustls configuration builder for backend calls and
//! for the HTTP fetches plugins ask for. Always built with an explicit
//! provider (aws-lc-rs): with two providers in the dependency graph the
//! implicit default panics.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
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
    /// Trust only `extra_roots_pem`, not the system's roots.
    pub disable_system_roots: bool,
    /// The versions offered (both when unset).
    pub versions: Option<(sepia_config::TlsVersion, sepia_config::TlsVersion)>,
    /// Key exchange groups as IANA IDs, in order; empty for the defaults.
    pub curves: Vec<u16>,
    /// A certificate chain and key (PEM) to present (mTLS).
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsSettings {
    /// The settings of backend calls from the file's `client_tls`: its
    /// files read now, so that a missing one stops start-up with its path.
    pub fn for_backends(tls: &sepia_config::BackendTls) -> Result<(Self, Vec<String>), TlsError> {
        let read = |setting: String, file: &str| {
            std::fs::read(file).map_err(|source| TlsError::Read {
                setting,
                file: file.to_owned(),
                source,
            })
        };
        let mut extra_roots_pem = Vec::new();
        for (i, file) in tls.ca_certs.iter().enumerate() {
            extra_roots_pem.extend(read(format!("client_tls.ca_certs[{i}]"), file)?);
            extra_roots_pem.push(b'\n');
        }
        let mut warnings = Vec::new();
        let client_cert = match tls.client_certs.as_slice() {
            [] => None,
            [first, rest @ ..] => {
                if !rest.is_empty() {
                    warnings.push(format!(
                        "client_tls.client_certs: only the first certificate is presented to backends ({} more ignored)",
                        rest.len()
                    ));
                }
                Some((
                    read(
                        format!("{}.certificate", first.json_path),
                        &first.certificate,
                    )?,
                    read(
                        format!("{}.private_key", first.json_path),
                        &first.private_key,
                    )?,
                ))
            }
        };
        Ok((
            Self {
                extra_roots_pem,
                cipher_suites: tls.cipher_suites.clone(),
                pins_sha256: Vec::new(),
                skip_verify: tls.allow_insecure_connections,
                disable_system_roots: tls.disable_system_ca_pool,
                versions: Some((tls.min_version, tls.max_version)),
                curves: tls.curve_preferences.clone(),
                client_cert,
            },
            warnings,
        ))
    }
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
    /// A file could not be read.
    #[error("{setting} {file:?} cannot be read: {source}")]
    Read {
        /// The setting that names it.
        setting: String,
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// None of the listed curves is supported.
    #[error("none of the listed curve_preferences can be offered: list 23 (P-256), 24 (P-384) or 29 (X25519)")]
    NoCurve,
    /// The client certificate's key is unusable.
    #[error("the client certificate's private key is not usable PEM: {0}")]
    BadClientKey(String),
    /// A pin that is not a base64 SHA-256 digest.
    #[error(
        "pin \"{0}\" is not a base64 (URL-safe, padded) SHA-256 digest of a SubjectPublicKeyInfo"
    )]
    BadPin(String),
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

/// The system's roots (when `system`) and those of `extra_pem`.
pub(crate) fn roots_with(system: bool, extra_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    // A machine without system roots still works for http:// backends and
    // for https:// ones trusted through extra roots; unreadable entries are
    // skipped as every TLS client does.
    if system {
        let native = rustls_native_certs::load_native_certs();
        let _ = store.add_parsable_certificates(native.certs);
    }
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

pub(crate) fn rustls_pemfile_certs(
    reader: &mut &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadRoots(e.to_string()))
}

/// Decodes a pin: base64 of a SHA-256 digest. KrakenD writes them URL-safe
/// and padded; the standard alphabet and missing padding are accepted too.
fn decode_pin(pin: &str) -> Result<[u8; 32], TlsError> {
    use base64::{
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
        Engine,
    };
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient),
        GeneralPurpose::new(&base64::alphabet::STANDARD, lenient),
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(pin.trim()).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| TlsError::BadPin(pin.to_owned()))
}

fn spki_sha256(certificate: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = webpki::EndEntityCert::try_from(certificate).ok()?;
    let spki = parsed.subject_public_key_info();
    let digest = ::aws_lc_rs::digest::digest(&::aws_lc_rs::digest::SHA256, spki.as_ref());
    <[u8; 32]>::try_from(digest.as_ref()).ok()
}

/// Verifies the chain (unless told not to), then requires one presented
/// certificate whose public key matches a pin.
#[derive(Debug)]
struct PinningVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if self.pins.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let matched = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(spki_sha256)
            .any(|digest| self.pins.contains(&digest));
        if matched {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "no certificate the server presented matches the configured fingerprints".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds a client configuration: TLS 1.2 minimum, system roots plus the
/// extra ones, the chosen cipher suites, and pinning or no verification
/// when asked.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let mut provider = provider(&settings.cipher_suites)?;
    if !settings.curves.is_empty() {
        provider.kx_groups = settings
            .curves
            .iter()
            .filter_map(|id| {
                aws_lc_rs::ALL_KX_GROUPS
                    .iter()
                    .find(|g| u16::from(g.name()) == *id)
                    .copied()
            })
            .collect();
        if provider.kx_groups.is_empty() {
            return Err(TlsError::NoCurve);
        }
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match settings.versions {
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        Some((min, max)) => [
            (sepia_config::TlsVersion::Tls13, &rustls::version::TLS13),
            (sepia_config::TlsVersion::Tls12, &rustls::version::TLS12),
        ]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, v)| v)
        .collect(),
    };
    let builder =
        ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let roots = || roots_with(!settings.disable_system_roots, &settings.extra_roots_pem);
    let finish = |builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>| {
        match &settings.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => {
                let mut reader = chain.as_slice();
                let chain = rustls_pemfile_certs(&mut reader)?;
                let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| TlsError::BadClientKey(e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::Rustls)
            }
        }
    };
    if !settings.skip_verify && settings.pins_sha256.is_empty() {
        return finish(builder.with_root_certificates(roots()?));
    }
    let pins = settings
        .pins_sha256
        .iter()
        .map(|p| decode_pin(p))
        .collect::<Result<Vec<_>, _>>()?;
    let chain = if settings.skip_verify {
        None
    } else {
        let roots = Arc::new(roots()?);
        Some(
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsError::BadRoots(e.to_string()))?,
        )
    };
    let verifier = PinningVerifier {
        chain,
        pins,
        provider,
    };
    finish(
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier)),
    )
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
    fn pins_decode_in_either_alphabet_and_bad_ones_are_named() {
        let digest = [0xfbu8; 32];
        use base64::Engine;
        let url = base64::engine::general_purpose::URL_SAFE.encode(digest);
        let std_nopad = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
        assert_eq!(decode_pin(&url).unwrap(), digest);
        assert_eq!(decode_pin(&std_nopad).unwrap(), digest);
        assert!(matches!(decode_pin("short"), Err(TlsError::BadPin(_))));
        let err = client_config(&TlsSettings {
            pins_sha256: vec!["nope".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(client_config(&TlsSettings {
            skip_verify: true,
            ..Default::default()
        })
        .is_ok());
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
