//! Loads one plugin file: trust check, abi_stable header, our own version
//! rule, layout check, then the plugin's self-description. Each file gets its
//! own `lib_header_from_path` (not `RootModule::load_from_*`, which caches one
//! module per interface type and would hand back the first plugin forever).

use std::{
    fs,
    path::{Path, PathBuf},
};

use abi_stable::library::{lib_header_from_path, LibraryError};
use sepia_plugin_api::{PluginModuleRef, ABI_VERSION};

use super::root_module::RootModule;

/// A plugin whose library loaded and passed every check, not yet initialised.
#[derive(Clone)]
pub struct LoadedLibrary {
    /// The file.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// Its own version.
    pub version: String,
    /// The sepia-plugin-api version it was built against.
    pub abi_version: String,
    /// The namespaces it serves.
    pub namespaces: Vec<String>,
    /// The namespaces it serves in the top-level `extra_config`.
    pub service_namespaces: Vec<String>,
    /// Its root module.
    pub module: RootModule,
}

/// Why a file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not a Sepia plugin at all (another shared library, a
    /// text file matching the pattern, ...): skipped with a warning.
    #[error("{path} is not a Sepia plugin ({reason})")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is a Sepia plugin this gateway must not or cannot run.
    #[error("plugin {path} refused: {reason}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
}

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiVersion {
    major: u64,
    minor: u64,
}

impl AbiVersion {
    /// Parses the leading `major.minor` of a version string.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }
}

/// The version rule: same major version, and the plugin's minor version no
/// newer than the gateway's (a newer plugin may rely on host services this
/// gateway lacks). `None` when compatible, or the reason.
pub fn version_mismatch(plugin: &str, host: &str) -> Option<String> {
    let (Some(p), Some(h)) = (AbiVersion::parse(plugin), AbiVersion::parse(host)) else {
        return Some(format!("its ABI version \"{plugin}\" cannot be read"));
    };
    if p.major != h.major {
        return Some(format!(
            "built against sepia-plugin-api {plugin}, but this gateway provides {host} (major versions differ): rebuild the plugin against sepia-plugin-api {}.x",
            h.major
        ));
    }
    if p.minor > h.minor {
        return Some(format!(
            "built against sepia-plugin-api {plugin}, newer than this gateway's {host}: upgrade the gateway, or rebuild the plugin against sepia-plugin-api {}.{}",
            h.major, h.minor
        ));
    }
    None
}

/// A short, clear account of abi_stable's error (its own text for a layout
/// mismatch runs to hundreds of lines; the full text goes to the debug log).
fn summarise(error: &LibraryError, claimed: &str) -> String {
    match error {
        LibraryError::AbiInstability(_) => format!(
            "its types do not match the layout of sepia-plugin-api {claimed}, the version it claims (it was built against a changed or different copy of the interface): rebuild it against sepia-plugin-api {ABI_VERSION}"
        ),
        LibraryError::InvalidAbiHeader(header) => format!(
            "it was built with abi_stable {}.{}, incompatible with this gateway's: rebuild it against sepia-plugin-api {ABI_VERSION}",
            header.abi_major, header.abi_minor
        ),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!(
            "built against sepia-plugin-api {actual_version}, but this gateway provides {expected_version}"
        ),
        LibraryError::RootModule { err, .. } => {
            format!("its root module failed to initialise: {}", err.to_string().trim())
        }
        other => other.to_string().lines().next().unwrap_or("unknown error").to_owned(),
    }
}

/// Refuses files that a user other than the owner could replace: a plugin
/// runs with the gateway's rights.
fn check_trust(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let world_writable = |p: &Path| {
            fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o002 != 0)
                .unwrap_or(false)
        };
        if world_writable(path) {
            return Err("the file is writable by every user, so anyone could replace the code the gateway runs: `chmod o-w` it, or start with --allow-insecure-plugins".into());
        }
        if let Some(folder) = path.parent() {
            let sticky = fs::metadata(folder)
                .map(|m| m.permissions().mode() & 0o1000 != 0)
                .unwrap_or(false);
            if world_writable(folder) && !sticky {
                return Err(format!(
                    "its folder {} is writable by every user, so anyone could replace the plugin: `chmod o-w` the folder, or start with --allow-insecure-plugins",
                    folder.display()
                ));
            }
        }
    }
    Ok(())
}

/// Loads and checks one file.
pub fn load_library(path: &Path, allow_insecure: bool) -> Result<LoadedLibrary, LoadError> {
    // dlopen searches the library path for a name without a '/': always
    // hand it the file itself.
    let path = &fs::canonicalize(path).map_err(|e| LoadError::NotAPlugin {
        path: path.to_owned(),
        reason: format!("cannot be read: {e}"),
    })?;
    let refused = |reason: String| LoadError::Refused {
        path: path.to_owned(),
        reason,
    };
    if !allow_insecure {
        check_trust(path).map_err(refused)?;
    }
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => LoadError::NotAPlugin {
            path: path.to_owned(),
            reason: format!("cannot be opened as a shared library: {err}"),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin {
            path: path.to_owned(),
            reason: "it exports no plugin module".into(),
        },
        other => refused(summarise(&other, "(unknown)")),
    })?;
    let abi_version = header.version_strings().version.to_string();
    if let Some(reason) = version_mismatch(&abi_version, ABI_VERSION) {
        return Err(refused(reason));
    }
    // Each minor version's root module is checked against the frozen copy
    // of the interface it was built against: abi_stable refuses a library
    // whose vtables are shorter than the loader's.
    let minor = AbiVersion::parse(&abi_version).map(|v| v.minor);
    let loaded = match minor {
        Some(0) => header
            .init_root_module::<sepia_plugin_api_v1_0::PluginModuleRef>()
            .map(RootModule::V1_0),
        Some(1) => header
            .init_root_module::<sepia_plugin_api_v1_1::PluginModuleRef>()
            .map(RootModule::V1_1),
        Some(2) => header
            .init_root_module::<sepia_plugin_api_v1_2::PluginModuleRef>()
            .map(RootModule::V1_2),
        _ => header
            .init_root_module::<PluginModuleRef>()
            .map(RootModule::Current),
    };
    let module = loaded.map_err(|e| {
        tracing::debug!(path = %path.display(), error = %e, "abi_stable's account of the refusal");
        refused(summarise(&e, &abi_version))
    })?;
    let info = module.info();
    Ok(LoadedLibrary {
        path: path.to_owned(),
        name: info.name,
        version: info.version,
        abi_version,
        namespaces: info.namespaces,
        service_namespaces: info.service_namespaces,
        module,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule() {
        assert_eq!(version_mismatch("1.0.0", "1.0.0"), None);
        assert_eq!(version_mismatch("1.0.3", "1.2.0"), None);
        assert!(version_mismatch("1.3.0", "1.2.0")
            .unwrap()
            .contains("upgrade the gateway"));
        assert!(version_mismatch("2.0.0", "1.2.0")
            .unwrap()
            .contains("major versions differ"));
        assert!(version_mismatch("x", "1.2.0")
            .unwrap()
            .contains("cannot be read"));
    }

    #[test]
    fn a_file_that_is_no_library_is_not_a_plugin() {
        let dir = std::env::temp_dir().join(format!("sepia-loader-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("fake.so");
        fs::write(&file, b"not an ELF file").unwrap();
        match load_library(&file, false) {
            Err(LoadError::NotAPlugin { reason, .. }) => {
                assert!(reason.contains("cannot be opened"), "{reason}")
            }
            other => panic!("{:?}", other.err()),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn world_writable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sepia-trust-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("open.so");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        match load_library(&file, false) {
            Err(LoadError::Refused { reason, .. }) => {
                assert!(reason.contains("writable by every user"), "{reason}")
            }
            other => panic!("{:?}", other.err()),
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
