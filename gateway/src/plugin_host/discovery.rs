//! Which files are plugin candidates: the configured `plugin.folder` with
//! KrakenD's substring `pattern`, and the folder of the `sepia` executable
//! (so a `cargo build` tree works without configuration).

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Where a candidate came from. Configured plugins take precedence over
/// default-folder ones that serve the same namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Compiled into the binary.
    Builtin,
    /// `plugin.folder` of the configuration.
    Configured,
    /// The folder of the `sepia` executable.
    DefaultFolder,
}

/// One folder to scan.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// The folder.
    pub folder: PathBuf,
    /// A file is a candidate when its name contains this; empty means every
    /// shared library.
    pub pattern: String,
    /// Where the folder comes from.
    pub origin: Origin,
}

/// A file to try loading.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its canonical path.
    pub path: PathBuf,
    /// Where it was found.
    pub origin: Origin,
}

/// Why a folder could not be scanned.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the plugin folder {folder}: {source}")]
pub struct DiscoveryError {
    /// The folder.
    pub folder: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

fn matches(name: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        name.ends_with(std::env::consts::DLL_SUFFIX)
    } else {
        name.contains(pattern)
    }
}

/// The candidates of every source, each file once, in name order per
/// folder. A configured folder that does not exist is an error; a missing
/// default folder is not.
pub fn discover(sources: &[PluginSource]) -> Result<Vec<Candidate>, DiscoveryError> {
    let mut out: Vec<Candidate> = Vec::new();
    for source in sources {
        let entries = match fs::read_dir(&source.folder) {
            Ok(entries) => entries,
            Err(e) if source.origin == Origin::DefaultFolder => {
                tracing::debug!(folder = %source.folder.display(), error = %e, "default plugin folder not readable");
                continue;
            }
            Err(e) => {
                return Err(DiscoveryError {
                    folder: source.folder.clone(),
                    source: e,
                })
            }
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_type()
                    .map(|t| t.is_file() || t.is_symlink())
                    .unwrap_or(false)
            })
            .filter(|entry| matches(&entry.file_name().to_string_lossy(), &source.pattern))
            .map(|entry| entry.path())
            .collect();
        found.sort();
        for path in found {
            let canonical = canonical(&path);
            if !out.iter().any(|c| c.path == canonical) {
                out.push(Candidate {
                    path: canonical,
                    origin: source.origin,
                });
            }
        }
    }
    Ok(out)
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The folder of the running executable.
pub fn executable_folder() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_krakend_substring_rule() {
        assert!(matches("libsigner.so", ".so"));
        assert!(matches("my-plugin.so.1", "plugin"));
        assert!(!matches("libsigner.so", "nope"));
        assert!(matches(&format!("x{}", std::env::consts::DLL_SUFFIX), ""));
        assert!(!matches("x.txt", ""));
    }

    #[test]
    fn files_are_found_once_and_a_missing_configured_folder_is_an_error() {
        let dir = std::env::temp_dir().join(format!("sepia-discovery-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("b.so"), b"").unwrap();
        fs::write(dir.join("a.so"), b"").unwrap();
        fs::write(dir.join("notes.txt"), b"").unwrap();
        let source = PluginSource {
            folder: dir.clone(),
            pattern: ".so".into(),
            origin: Origin::Configured,
        };
        let found = discover(&[source.clone(), source]).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|c| c.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["a.so", "b.so"]);
        let missing = PluginSource {
            folder: dir.join("missing"),
            pattern: String::new(),
            origin: Origin::Configured,
        };
        assert!(discover(std::slice::from_ref(&missing)).is_err());
        assert!(discover(&[PluginSource {
            origin: Origin::DefaultFolder,
            ..missing
        }])
        .unwrap()
        .is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
