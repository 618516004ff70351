//! Where a JWK set comes from and how it is got: krakend-jose's settings
//! (`jwk_url`, `jwk_local_path`, `disable_jwk_security`, `jwk_fingerprints`,
//! `cipher_suites`, `jwk_local_ca`), read the same for the signer and the
//! validator, and the fetch through the gateway's host services. No message
//! here ever contains key material.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use sepia_plugin_api::{FetchRequest, Host, TlsOptions};
use serde_json::Value;

use sepia_plugin_settings::{Known, SettingsReader};

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `jwk_url`.
    Url(String),
    /// `jwk_local_path`.
    File(PathBuf),
}

impl KeySource {
    /// The URL or path, for messages.
    pub fn name(&self) -> String {
        match self {
            KeySource::Url(url) => url.clone(),
            KeySource::File(path) => path.display().to_string(),
        }
    }
}

/// The key set settings of one plugin instance.
#[derive(Debug, Clone)]
pub struct KeySourceSettings {
    pub source: KeySource,
    pub tls: TlsOptions,
    /// How long start-up keeps retrying an unreachable key set
    /// (`jwk_startup_timeout`).
    pub startup_timeout: Duration,
}

/// The settings [`KeySourceSettings::read`] reads, for a plugin's list of
/// known settings.
pub const KEY_SOURCE_SETTINGS: &[Known] = &[
    ("jwk_url", Some("jwk-url")),
    ("jwk_local_path", None),
    ("jwk_local_ca", None),
    ("disable_jwk_security", None),
    ("jwk_fingerprints", None),
    ("cipher_suites", None),
    ("jwk_startup_timeout", None),
];

const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A better message than "unknown setting" for krakend-jose settings Sepia
/// does not implement.
pub fn explain_unsupported(key: &str) -> Option<String> {
    match key {
        "secret_url" | "cypher_key" => Some(format!(
            "\"{key}\" (encrypted keys) is not supported by Sepia yet: use jwk_url or jwk_local_path with a plain JWK set"
        )),
        _ => None,
    }
}

impl KeySourceSettings {
    /// Reads the key set settings; problems go to `r`. `None` when there is
    /// no usable source.
    pub fn read(r: &mut SettingsReader<'_>) -> Option<Self> {
        let disable_security = r.boolean("disable_jwk_security");
        let url = r.string("jwk_url");
        let path = r.string("jwk_local_path");
        let source = match (url, path) {
            (Some(_), Some(_)) => {
                r.problem("\"jwk_url\" and \"jwk_local_path\" are both set: keep one");
                None
            }
            (Some(url), None) => Some(KeySource::Url(url)),
            (None, Some(path)) => Some(KeySource::File(PathBuf::from(path))),
            (None, None) => {
                r.problem("no key set: set \"jwk_url\" (https://...) or \"jwk_local_path\"");
                None
            }
        };
        match &source {
            // krakend-jose logs this and serves the endpoint unprotected
            // (validator) or unsigned (signer): Sepia refuses to start.
            Some(KeySource::Url(url)) if url.starts_with("http://") && !disable_security => {
                r.problem(format!(
                    "insecure connection to the JWK service {url}: use https://, or set \"disable_jwk_security\": true to allow plain http"
                ));
            }
            Some(KeySource::Url(url))
                if !url.starts_with("http://") && !url.starts_with("https://") =>
            {
                r.problem(format!(
                    "\"jwk_url\" {url} must start with https:// (or http://)"
                ));
            }
            Some(KeySource::File(path)) if !disable_security => r.problem(format!(
                "\"jwk_local_path\" {} reads keys from a file: set \"disable_jwk_security\": true to allow it",
                path.display()
            )),
            _ => {}
        }
        let mut tls = TlsOptions {
            pins_sha256: r
                .strings("jwk_fingerprints")
                .into_iter()
                .map(Into::into)
                .collect(),
            skip_verify: disable_security
                && matches!(&source, Some(KeySource::Url(u)) if u.starts_with("https://")),
            ..TlsOptions::default()
        };
        match r.value("cipher_suites") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_u64().and_then(|n| u16::try_from(n).ok()) {
                        Some(id) => tls.cipher_suites.push(id),
                        None => r.problem(format!(
                            "\"cipher_suites\" holds {item}, not a cipher suite ID (a number such as 49199)"
                        )),
                    }
                }
            }
            Some(_) => r.problem("\"cipher_suites\" must be an array of numbers"),
        }
        if let Some(ca) = r.string("jwk_local_ca") {
            match std::fs::read(&ca) {
                Ok(pem) => tls.extra_roots_pem = pem.into(),
                Err(e) => r.problem(format!("\"jwk_local_ca\" {ca} cannot be read: {e}")),
            }
        }
        let startup_timeout = r
            .duration("jwk_startup_timeout")
            .unwrap_or(DEFAULT_STARTUP_TIMEOUT);
        Some(Self {
            source: source?,
            tls,
            startup_timeout,
        })
    }

    /// Whether certificate checks are off (KrakenD's `disable_jwk_security`
    /// on an https URL).
    pub fn skips_verification(&self) -> bool {
        self.tls.skip_verify
    }

    /// Whether the set is remote (and so not read by `sepia check`).
    pub fn is_remote(&self) -> bool {
        matches!(self.source, KeySource::Url(_))
    }

    /// One attempt to read the set's bytes.
    pub fn read_set(&self, host: Option<&Host>) -> Result<Vec<u8>, KeyError> {
        match &self.source {
            KeySource::Url(url) => self.fetch(url, host),
            KeySource::File(path) => std::fs::read(path).map_err(|e| {
                KeyError::fatal(format!("cannot read the key set {}: {e}", path.display()))
            }),
        }
    }

    fn fetch(&self, url: &str, host: Option<&Host>) -> Result<Vec<u8>, KeyError> {
        let host = host
            .ok_or_else(|| KeyError::fatal("no gateway host services to fetch the key set with"))?;
        let mut request = FetchRequest::get(url);
        request.timeout_ms = FETCH_TIMEOUT_MS;
        request.tls = self.tls.clone();
        let response = host
            .fetch(request)
            .map_err(|e| KeyError::transient(format!("fetching {url} failed: {}", e.message())))?;
        match response.status {
            200 => {}
            status @ 500..=599 => {
                return Err(KeyError::transient(format!("{url} answered {status}")))
            }
            status => {
                return Err(KeyError::fatal(format!(
                    "{url} answered {status}, not a JWK set"
                )))
            }
        }
        let content_type = response
            .header("content-type")
            .and_then(|h| h.value_str())
            .unwrap_or("(none)")
            .to_ascii_lowercase();
        if !content_type.contains("json") {
            return Err(KeyError::fatal(format!(
                "{url} answered with content type {content_type}, not a JSON JWK set"
            )));
        }
        Ok(response.body.into_vec())
    }

    /// Start-up: reads the set and makes it into `T` with `build`, retrying
    /// transient failures with backoff until `jwk_startup_timeout`, then
    /// gives up with the last reason.
    pub fn load_at_start<T>(
        &self,
        host: Option<&Host>,
        build: impl Fn(&[u8]) -> Result<T, KeyError>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.startup_timeout;
        let mut wait = Duration::from_millis(200);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.read_set(host).and_then(|body| build(&body)) {
                Ok(value) => return Ok(value),
                Err(e) if !e.retryable => return Err(e.message),
                Err(e) => {
                    if Instant::now() + wait > deadline {
                        return Err(format!(
                            "{} (gave up after {attempts} attempt(s) in {:?}; raise jwk_startup_timeout to wait longer)",
                            e.message, self.startup_timeout
                        ));
                    }
                    tracing::warn!(error = %e.message, retry_in = ?wait, "key set not available yet");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Why one attempt to get a key failed.
#[derive(Debug)]
pub struct KeyError {
    pub message: String,
    /// Whether trying again may help (network trouble, 5xx).
    pub retryable: bool,
}

impl KeyError {
    /// A failure that trying again will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that may pass.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

const FETCH_TIMEOUT_MS: u64 = 5_000;

/// The `keys` of a JWK set body, each a JSON object.
pub fn set_keys(
    body: &[u8],
    source: &KeySource,
) -> Result<Vec<serde_json::Map<String, Value>>, KeyError> {
    let name = source.name();
    let set: Value = serde_json::from_slice(body)
        .map_err(|e| KeyError::fatal(format!("the key set from {name} is not JSON: {e}")))?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError::fatal(format!("the key set from {name} has no \"keys\" array")))?;
    keys.iter()
        .enumerate()
        .map(|(i, key)| match key {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(KeyError::fatal(format!(
                "key {i} of the key set from {name} is not a JSON object"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<KeySourceSettings, String> {
        let value = SettingsReader::parse(json)?;
        let mut r = SettingsReader::new(&value, &[KEY_SOURCE_SETTINGS], explain_unsupported);
        let settings = KeySourceSettings::read(&mut r);
        r.finish()?;
        settings.ok_or_else(|| "no settings".into())
    }

    #[test]
    fn security_settings_become_tls_options() {
        let s = read(
            r#"{"jwk_url":"https://h/k","disable_jwk_security":true,
                "jwk_fingerprints":["abc="],"cipher_suites":[49199]}"#,
        )
        .unwrap();
        assert!(s.skips_verification());
        assert!(s.is_remote());
        assert_eq!(s.tls.cipher_suites.as_slice(), &[49199]);
        assert_eq!(s.tls.pins_sha256.len(), 1);
    }

    #[test]
    fn unsafe_sources_are_refused_with_the_way_out() {
        let err = read(r#"{"jwk_url":"http://h/k"}"#).unwrap_err();
        assert!(err.contains("insecure connection"), "{err}");
        let err = read(r#"{"jwk_local_path":"/k.json"}"#).unwrap_err();
        assert!(err.contains("disable_jwk_security"), "{err}");
        let err = read(r#"{}"#).unwrap_err();
        assert!(err.contains("no key set"), "{err}");
        let err = read(r#"{"jwk_url":"ftp://h","secret_url":"x"}"#).unwrap_err();
        assert!(err.contains("must start with https://"), "{err}");
        assert!(err.contains("encrypted keys"), "{err}");
    }

    #[test]
    fn a_set_without_keys_is_named() {
        let source = KeySource::File("/k.json".into());
        let err = set_keys(br#"{"nope":[]}"#, &source).unwrap_err();
        assert!(err.message.contains("no \"keys\" array"), "{}", err.message);
        assert!(!err.retryable);
        assert_eq!(
            set_keys(br#"{"keys":[{"kid":"a"}]}"#, &source)
                .unwrap()
                .len(),
            1
        );
    }
}
