//! The gateway's top-level modules import each other in one direction: no
//! module reaches back into one that reaches it. Read from the sources, so a
//! new circle fails here with the path that closes it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

/// The top-level modules `text` names through `crate::`.
fn imports_of(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b, c::{..}}`: the names at the group's top.
            let mut depth = 0usize;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(first_name(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            out.extend(first_name(&item));
        } else {
            out.extend(first_name(rest));
        }
    }
    out
}

fn first_name(text: &str) -> Option<String> {
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn collect(dir: &Path, top: Option<&str>, graph: &mut BTreeMap<String, BTreeSet<String>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = top.map(str::to_owned).unwrap_or(name.clone());
        if path.is_dir() {
            collect(&path, Some(&module), graph);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if top.is_none() && (name == "lib" || name == "main") {
                continue;
            }
            let imports = imports_of(&fs::read_to_string(&path).unwrap());
            let edges = graph.entry(module.clone()).or_default();
            edges.extend(imports.into_iter().filter(|m| *m != module));
        }
    }
}

/// A path from `from` back to `to`, if there is one.
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_owned()]);
    }
    if !seen.insert(from.to_owned()) {
        return None;
    }
    for next in graph.get(from).into_iter().flatten() {
        if let Some(mut rest) = path_between(graph, next, to, seen) {
            rest.insert(0, from.to_owned());
            return Some(rest);
        }
    }
    None
}

#[test]
fn top_level_modules_import_in_one_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    collect(&src, None, &mut graph);
    assert!(graph.contains_key("endpoint") && graph.contains_key("upstream"));
    for (module, imports) in &graph {
        for imported in imports {
            if let Some(back) = path_between(&graph, imported, module, &mut BTreeSet::new()) {
                panic!(
                    "{module} imports {imported}, and {} leads back",
                    back.join(" -> ")
                );
            }
        }
    }
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let text = "use crate::{a::X, b, c::{d, e::F}};\nlet x = crate::g::h();";
    let found: Vec<String> = imports_of(text).into_iter().collect();
    assert_eq!(found, vec!["a", "b", "c", "g"]);
}
