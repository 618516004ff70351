//! The top-level `tls`: HTTPS for the gateway's own listener, as lura of
//! the file's generation reads it. Version 3 (lura 2): `public_key` and
//! `private_key` or a `keys` list, `min_version` and `max_version` (TLS 1.3
//! when absent or unknown), `cipher_suites` and `curve_preferences` as Go's
//! numbers, `enable_mtls` with `ca_certs` and `disable_system_ca_pool`.
//! Versions 1 and 2 (lura 1.4): one key pair, versions without TLS 1.3
//! (TLS 1.2 when absent or unknown), mTLS against the system pool and the
//! server's own certificate. Sepia never serves below TLS 1.2.

use serde_json::Value;

use crate::{
    diagnostics::{index, Diagnostics, ProblemKind},
    reader::{type_name, ObjectReader},
};

/// A TLS protocol version Sepia serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// One certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsKeyPair {
    /// The certificate chain (`public_key`).
    pub public_key: String,
    /// The private key (`private_key`).
    pub private_key: String,
    /// Where the pair is in the file (`tls`, `tls.keys[0]`), for messages.
    pub json_path: String,
}

/// HTTPS for the gateway's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The certificates served, the first being the default.
    pub keys: Vec<TlsKeyPair>,
    /// The lowest version accepted.
    pub min_version: TlsVersion,
    /// The highest version accepted.
    pub max_version: TlsVersion,
    /// Go's cipher suite numbers, in preference order; empty: lura's list.
    pub cipher_suites: Vec<u16>,
    /// Go's curve numbers, in preference order; empty: lura's list.
    pub curve_preferences: Vec<u16>,
    /// Clients must present a certificate the trusted roots sign.
    pub enable_mtls: bool,
    /// Extra roots for client certificates (PEM files).
    pub ca_certs: Vec<String>,
    /// Trust only `ca_certs` (and the server's own certificates), not the
    /// system's roots.
    pub disable_system_ca_pool: bool,
}

/// Reads `tls`; `None` when absent or `disabled`.
pub(crate) fn server_tls(
    top: &mut ObjectReader<'_>,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<ServerTls> {
    let mut tls = top.object("tls", diags)?;
    let krakend2 = sepia_plugin_api::is_krakend2(version);
    let path = tls.path.clone();
    let disabled = tls.bool("disabled", diags).unwrap_or(false);
    let mut keys = Vec::new();
    let public = tls.string("public_key", diags).unwrap_or_default();
    let private = tls.string("private_key", diags).unwrap_or_default();
    let min = tls.string("min_version", diags);
    let max = tls.string("max_version", diags);
    let cipher_suites = numbers(&mut tls, "cipher_suites", diags);
    let curve_preferences = numbers(&mut tls, "curve_preferences", diags);
    // Go has ignored it since 1.18; read so that it is not "unknown".
    let _ = tls.bool("prefer_server_cipher_suites", diags);
    let enable_mtls = tls.bool("enable_mtls", diags).unwrap_or(false);
    let mut ca_certs = Vec::new();
    let mut disable_system_ca_pool = false;
    let mut listed = Vec::new();
    if krakend2 {
        ca_certs = tls.string_list("ca_certs", diags).unwrap_or_default();
        disable_system_ca_pool = tls.bool("disable_system_ca_pool", diags).unwrap_or(false);
        listed = key_list(&mut tls, diags);
    } else {
        for key in ["ca_certs", "disable_system_ca_pool", "keys"] {
            if tls.raw(key).is_some() {
                diags.push(
                    &format!("{path}.{key}"),
                    ProblemKind::Suspicious,
                    "KrakenD 1.x (a version 1 or 2 file) does not read it, so neither does Sepia: use \"version\": 3",
                );
            }
        }
    }
    tls.finish(&[], diags);
    if disabled {
        return None;
    }
    // lura 2 serves the top-level pair first, then the list.
    if !public.is_empty() || !private.is_empty() {
        keys.push(TlsKeyPair {
            public_key: public,
            private_key: private,
            json_path: path.clone(),
        });
    }
    keys.extend(listed);
    if keys.is_empty() {
        diags.invalid(
            &format!("{path}.public_key"),
            "public key not defined: name the certificate (PEM) with \"public_key\" and its key with \"private_key\", or set \"disabled\": true",
        );
    }
    for pair in &keys {
        let at = &pair.json_path;
        if pair.public_key.is_empty() {
            diags.invalid(&format!("{at}.public_key"), "public key not defined");
        }
        if pair.private_key.is_empty() {
            diags.invalid(&format!("{at}.private_key"), "private key not defined");
        }
    }
    let min_version = tls_version(&path, "min_version", min.as_deref(), krakend2, false, diags);
    let max_version = tls_version(&path, "max_version", max.as_deref(), krakend2, true, diags);
    if min_version > max_version {
        diags.invalid(
            &format!("{path}.min_version"),
            "is above \"max_version\": no version would be left to serve",
        );
    }
    Some(ServerTls {
        keys,
        min_version,
        max_version,
        cipher_suites,
        curve_preferences,
        enable_mtls,
        ca_certs,
        disable_system_ca_pool,
    })
}

/// A version as lura maps its name: unknown and absent names are TLS 1.3 in
/// lura 2 and TLS 1.2 in lura 1.4 (which has no TLS 1.3 entry). Versions
/// below 1.2 are raised to it as a minimum and refused as a maximum.
fn tls_version(
    path: &str,
    key: &str,
    name: Option<&str>,
    krakend2: bool,
    is_max: bool,
    diags: &mut Diagnostics,
) -> TlsVersion {
    let at = format!("{path}.{key}");
    let default = if krakend2 {
        TlsVersion::Tls13
    } else {
        TlsVersion::Tls12
    };
    match name {
        None => default,
        Some("TLS12") => TlsVersion::Tls12,
        Some("TLS13") if krakend2 => TlsVersion::Tls13,
        Some("TLS13") => {
            diags.push(
                &at,
                ProblemKind::Suspicious,
                "KrakenD 1.x (a version 1 or 2 file) knows no TLS13 and serves TLS 1.2 instead; so does Sepia: use \"version\": 3 for TLS 1.3",
            );
            TlsVersion::Tls12
        }
        Some(old @ ("SSL3.0" | "TLS10" | "TLS11")) => {
            if is_max {
                diags.invalid(
                    &at,
                    format!("{old} is broken and Sepia does not serve it: TLS12 is the lowest version it offers"),
                );
            } else {
                diags.push(
                    &at,
                    ProblemKind::Suspicious,
                    format!("{old} is broken: Sepia serves TLS 1.2 at least"),
                );
            }
            TlsVersion::Tls12
        }
        Some(other) => {
            diags.push(
                &at,
                ProblemKind::Suspicious,
                format!(
                    "\"{other}\" is not a version KrakenD knows (TLS12, TLS13): like KrakenD, Sepia uses {}",
                    if krakend2 { "TLS13" } else { "TLS12" }
                ),
            );
            default
        }
    }
}

/// A list of Go's 16-bit identifiers.
fn numbers(reader: &mut ObjectReader<'_>, key: &'static str, diags: &mut Diagnostics) -> Vec<u16> {
    let path = reader.path_of(key);
    let Some(value) = reader.raw(key) else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        diags.invalid(
            &path,
            format!("expected an array of numbers, found {}", type_name(value)),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => out.push(n),
            None => diags.invalid(
                &index(&path, i),
                format!("expected a number from 0 to 65535 (Go's identifier), found {item}"),
            ),
        }
    }
    out
}

/// `keys`: more certificate pairs (lura 2).
fn key_list(tls: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> Vec<TlsKeyPair> {
    let path = tls.path_of("keys");
    let Some(items) = tls.array("keys", diags) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut pair) = ObjectReader::of(index(&path, i), item, diags) else {
            continue;
        };
        let public_key = pair.string("public_key", diags).unwrap_or_default();
        let private_key = pair.string("private_key", diags).unwrap_or_default();
        pair.finish(&[], diags);
        out.push(TlsKeyPair {
            public_key,
            private_key,
            json_path: index(&path, i),
        });
    }
    out
}

/// A client certificate the gateway presents to backends (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, a PEM file (`certificate`).
    pub certificate: String,
    /// Its private key, a PEM file (`private_key`).
    pub private_key: String,
    /// Where it is in the file, for messages.
    pub json_path: String,
}

/// How the gateway speaks TLS to backends (`client_tls`, and the top-level
/// `allow_insecure_connections`), as lura 2 reads them; lura 1.4 reads
/// neither, so version 1 and 2 files keep the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTls {
    /// Do not check backends' certificates.
    pub allow_insecure_connections: bool,
    /// Extra roots (PEM files).
    pub ca_certs: Vec<String>,
    /// Trust only `ca_certs`.
    pub disable_system_ca_pool: bool,
    /// The versions offered: lura 2 offers only TLS 1.3 once `client_tls`
    /// is written, unless its versions say otherwise.
    pub min_version: TlsVersion,
    /// The highest version offered.
    pub max_version: TlsVersion,
    /// Go's suite numbers; empty: lura's list.
    pub cipher_suites: Vec<u16>,
    /// Go's curve numbers; empty: lura's list.
    pub curve_preferences: Vec<u16>,
    /// Certificates to present.
    pub client_certs: Vec<ClientCert>,
}

/// Reads `client_tls` and `allow_insecure_connections`; `None` when the
/// file sets neither (the gateway's defaults: TLS 1.2 and 1.3, the
/// system's roots).
pub(crate) fn backend_tls(
    top: &mut ObjectReader<'_>,
    version: u64,
    diags: &mut Diagnostics,
) -> Option<BackendTls> {
    let krakend2 = sepia_plugin_api::is_krakend2(version);
    if !krakend2 {
        for key in ["client_tls", "allow_insecure_connections"] {
            if top.raw(key).is_some() {
                diags.push(
                    &top.path_of(key),
                    ProblemKind::Suspicious,
                    "KrakenD 1.x (a version 1 or 2 file) does not read it, so neither does Sepia: use \"version\": 3",
                );
            }
        }
        return None;
    }
    let insecure = top
        .bool("allow_insecure_connections", diags)
        .unwrap_or(false);
    let Some(mut tls) = top.object("client_tls", diags) else {
        return insecure.then(|| BackendTls {
            allow_insecure_connections: true,
            ca_certs: Vec::new(),
            disable_system_ca_pool: false,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            client_certs: Vec::new(),
        });
    };
    let path = tls.path.clone();
    let allow_insecure_connections = tls
        .bool("allow_insecure_connections", diags)
        .unwrap_or(false)
        || insecure;
    let ca_certs = tls.string_list("ca_certs", diags).unwrap_or_default();
    let disable_system_ca_pool = tls.bool("disable_system_ca_pool", diags).unwrap_or(false);
    let min = tls.string("min_version", diags);
    let max = tls.string("max_version", diags);
    let cipher_suites = numbers(&mut tls, "cipher_suites", diags);
    let curve_preferences = numbers(&mut tls, "curve_preferences", diags);
    let mut client_certs = Vec::new();
    let certs_path = tls.path_of("client_certs");
    if let Some(items) = tls.array("client_certs", diags) {
        for (i, item) in items.iter().enumerate() {
            let at = index(&certs_path, i);
            let Some(mut cert) = ObjectReader::of(at.clone(), item, diags) else {
                continue;
            };
            let certificate = cert.string("certificate", diags).unwrap_or_default();
            let private_key = cert.string("private_key", diags).unwrap_or_default();
            cert.finish(&[], diags);
            if certificate.is_empty() || private_key.is_empty() {
                diags.invalid(
                    &at,
                    "needs both \"certificate\" and \"private_key\" (PEM files)",
                );
                continue;
            }
            client_certs.push(ClientCert {
                certificate,
                private_key,
                json_path: at,
            });
        }
    }
    tls.finish(&[], diags);
    if disable_system_ca_pool && ca_certs.is_empty() && !allow_insecure_connections {
        diags.invalid(
            &format!("{path}.disable_system_ca_pool"),
            "with no \"ca_certs\" no backend certificate could be trusted: list the CA files, or drop it",
        );
    }
    let min_version = tls_version(&path, "min_version", min.as_deref(), true, false, diags);
    let max_version = tls_version(&path, "max_version", max.as_deref(), true, true, diags);
    if min_version > max_version {
        diags.invalid(
            &format!("{path}.min_version"),
            "is above \"max_version\": no version would be left to offer",
        );
    }
    Some(BackendTls {
        allow_insecure_connections,
        ca_certs,
        disable_system_ca_pool,
        min_version,
        max_version,
        cipher_suites,
        curve_preferences,
        client_certs,
    })
}
