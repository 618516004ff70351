//! What the gateway calls itself: the `User-Agent` its backends see and the
//! `X-Krakend` header its endpoints answer with. By default, those of the
//! KrakenD CE release of the file's generation, as backends and clients of
//! a KrakenD file expect them; the `sepia.own_identity` switch names Sepia
//! instead (and sends no version header).

use http::{HeaderName, HeaderValue};

/// lura's `X-KRAKEND`, as Go writes it.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-krakend");

/// The KrakenD CE releases Sepia answers as: the one KrakenD CE's own
/// integration suite was taken from (version-3 files), and the last 1.x
/// (version 1 and 2 files). Macros, so that `concat!` builds the static
/// header values from them.
macro_rules! krakend_2 {
    () => {
        "2.13.8"
    };
}
macro_rules! krakend_1 {
    () => {
        "1.4.1"
    };
}

/// The KrakenD 2 release Sepia answers as (OpenTelemetry's
/// `service.version` by default).
pub const KRAKEND_2_VERSION: &str = krakend_2!();

/// How the gateway names itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    krakend2: bool,
    own: bool,
    /// `router.hide_version_header` (lura 2): the version becomes
    /// `undefined`.
    hide_version: bool,
}

impl Identity {
    /// For a file of `config_version` with these switches.
    pub fn new(config_version: u64, own_identity: bool, hide_version: bool) -> Self {
        Self {
            krakend2: sepia_plugin_api::is_krakend2(config_version),
            own: own_identity,
            hide_version,
        }
    }

    /// What backends get as `User-Agent` (or `X-Forwarded-Via`, when the
    /// client's own agent is forwarded).
    pub fn user_agent(&self) -> HeaderValue {
        HeaderValue::from_static(match (self.own, self.krakend2) {
            (true, _) => concat!("Sepia/", env!("CARGO_PKG_VERSION")),
            (false, true) => concat!("KrakenD Version ", krakend_2!()),
            (false, false) => concat!("KrakenD Version ", krakend_1!()),
        })
    }

    /// The `X-Krakend` value of an endpoint's answers; `None` with
    /// `own_identity`.
    pub fn version_header(&self) -> Option<HeaderValue> {
        match (self.own, self.krakend2, self.hide_version) {
            (true, _, _) => None,
            (false, true, true) => Some(HeaderValue::from_static("Version undefined")),
            (false, true, false) => {
                Some(HeaderValue::from_static(concat!("Version ", krakend_2!())))
            }
            (false, false, _) => Some(HeaderValue::from_static(concat!("Version ", krakend_1!()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_names_its_release() {
        let v3 = Identity::new(3, false, false);
        assert_eq!(v3.user_agent(), "KrakenD Version 2.13.8");
        assert_eq!(v3.version_header().unwrap(), "Version 2.13.8");
        let hidden = Identity::new(3, false, true);
        assert_eq!(hidden.version_header().unwrap(), "Version undefined");
        assert_eq!(hidden.user_agent(), v3.user_agent());
        let v2 = Identity::new(2, false, true);
        assert_eq!(v2.user_agent(), "KrakenD Version 1.4.1");
        assert_eq!(v2.version_header().unwrap(), "Version 1.4.1");
        let own = Identity::new(3, true, false);
        assert!(own.user_agent().to_str().unwrap().starts_with("Sepia/"));
        assert_eq!(own.version_header(), None);
    }
}
