//! `sepia run --watch`: notices when the configuration file changes, so
//! that it is reloaded as on SIGHUP. It polls the file's metadata (a second
//! apart) rather than asking the kernel for events: polling sees a file
//! replaced by an editor's rename, a ConfigMap's symlink swap and a bind
//! mount alike, where inotify watches lose track of some of them.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);
/// How long a change must hold still before it is taken (a file being
/// written is read once it is whole).
const SETTLE: Duration = Duration::from_millis(200);

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    // Through the symlink: the file it names now.
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// A watched configuration file.
pub struct ConfigWatch {
    path: PathBuf,
    seen: Option<Stamp>,
}

impl ConfigWatch {
    /// Watches `path` from its current version on.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            seen: stamp(path),
        }
    }

    /// Resolves once the file has changed since it was last seen and held
    /// still; a file that is missing for a moment (replaced by a rename) is
    /// waited for.
    pub async fn changed(&mut self) {
        loop {
            tokio::time::sleep(POLL).await;
            let Some(now) = stamp(&self.path) else {
                continue;
            };
            if Some(now) == self.seen {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            if stamp(&self.path) == Some(now) {
                self.seen = Some(now);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_rewrite_is_seen_once_it_settles_and_not_before() {
        let dir = std::env::temp_dir().join(format!("sepia-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("krakend.json");
        std::fs::write(&path, "{}").unwrap();
        let mut watch = ConfigWatch::new(&path);
        // Unchanged: still waiting after several polls.
        assert!(
            tokio::time::timeout(Duration::from_secs(5), watch.changed())
                .await
                .is_err()
        );
        // Replaced by a rename, as editors save.
        let next = dir.join("krakend.json.new");
        std::fs::write(&next, "{\"version\": 3}").unwrap();
        std::fs::rename(&next, &path).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("the change is seen");
        // And only once.
        assert!(
            tokio::time::timeout(Duration::from_secs(5), watch.changed())
                .await
                .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
