//! The frozen copies of earlier plugin interfaces under `compat/` are exact:
//! each file's SHA-256 was recorded when its version was released
//! (`compat/FROZEN.sha256`), and nothing may be added, changed or removed.
//! A plugin built against a released version must keep loading; an edited
//! copy would check it against a layout that was never released.

use std::{collections::BTreeMap, fs, path::Path};

use aws_lc_rs::digest::{digest, SHA256};
use sepia_e2e::artifacts::workspace_root;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Builds of a frozen crate on its own are not part of it.
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files_under(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative != "FROZEN.sha256" && !relative.ends_with("Cargo.lock") {
                out.push(relative);
            }
        }
    }
}

#[test]
fn frozen_interfaces_are_byte_for_byte_as_released() {
    let compat = workspace_root().join("compat");
    let recorded: BTreeMap<String, String> = fs::read_to_string(compat.join("FROZEN.sha256"))
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (hash, file) = line.split_once("  ").expect("sha256sum format");
            (file.to_owned(), hash.to_owned())
        })
        .collect();
    assert!(
        recorded.contains_key("plugin-api-1.0/src/lib.rs")
            && recorded.contains_key("plugin-api-1.1/src/lib.rs")
            && recorded.contains_key("plugin-api-1.2/src/lib.rs"),
        "every released minor version is recorded"
    );
    let mut present = Vec::new();
    files_under(&compat, &compat, &mut present);
    present.sort();
    let recorded_files: Vec<String> = recorded.keys().cloned().collect();
    assert_eq!(
        present, recorded_files,
        "files added to or removed from compat/"
    );
    for (file, hash) in &recorded {
        let bytes = fs::read(compat.join(file)).unwrap();
        assert_eq!(
            &hex(digest(&SHA256, &bytes).as_ref()),
            hash,
            "compat/{file} was edited: frozen interfaces must stay as released"
        );
    }
}

#[test]
fn the_newest_frozen_copy_is_the_previous_minor_version() {
    // When the interface moves to 1.N, 1.(N-1) must be frozen beside the
    // others before the change lands.
    let manifest = fs::read_to_string(workspace_root().join("plugin-api/Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
    for earlier in 0..minor {
        let copy = workspace_root().join(format!("compat/plugin-api-1.{earlier}/Cargo.toml"));
        let text =
            fs::read_to_string(&copy).unwrap_or_else(|_| panic!("{} is missing", copy.display()));
        assert!(
            text.contains(&format!("version = \"1.{earlier}.0\"")),
            "{}",
            copy.display()
        );
    }
}
