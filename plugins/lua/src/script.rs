//! A namespace's Lua as krakend-lua runs it: its sources joined into one
//! chunk, then the `pre` or `post` code; and the map from a line of that
//! chunk back to the file it came from, for error messages.

use crate::settings::Source;

/// The chunk names errors and tracebacks show.
pub const SOURCES_CHUNK: &str = "sources";
pub const PRE_CHUNK: &str = "pre-script";
pub const POST_CHUNK: &str = "post-script";

/// The sources as one chunk: krakend-lua joins them with a newline, so a
/// file sees the top-level locals of those before it.
pub fn joined(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which file, and which line of it, a line of the joined chunk is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    /// Each file's name and how many lines of the chunk it spans.
    files: Vec<(String, usize)>,
}

impl SourceMap {
    pub fn of(sources: &[Source]) -> SourceMap {
        SourceMap {
            files: sources
                .iter()
                // The joining newline ends a file's last line.
                .map(|s| (s.file_name().to_owned(), s.text.matches('\n').count() + 1))
                .collect(),
        }
    }

    /// The file and line of `line` in chunk `chunk`; `None` for a chunk
    /// that is not the script's.
    pub fn locate(&self, chunk: &str, line: usize) -> Option<(String, usize)> {
        match chunk {
            PRE_CHUNK | POST_CHUNK => Some((chunk.to_owned(), line)),
            SOURCES_CHUNK => {
                let mut first = 1;
                for (name, lines) in &self.files {
                    if line < first + lines {
                        return Some((name.clone(), line - first + 1));
                    }
                    first += lines;
                }
                None
            }
            _ => None,
        }
    }
}

/// Compiles the joined sources and the code without running them, so a
/// syntax error stops start-up with its file and line (krakend-lua would
/// fail every request with it).
pub fn check_syntax(sources: &[Source], pre: &str, post: &str) -> Result<(), String> {
    let lua = mlua::Lua::new();
    let map = SourceMap::of(sources);
    let chunks = [
        (SOURCES_CHUNK, joined(sources)),
        (PRE_CHUNK, pre.to_owned()),
        (POST_CHUNK, post.to_owned()),
    ];
    for (name, code) in chunks {
        if code.is_empty() {
            continue;
        }
        if let Err(error) = lua.load(&code).set_name(format!("={name}")).into_function() {
            let failure = crate::failure::Failure::from_lua(&error, &map);
            return Err(match failure {
                crate::failure::Failure::Script {
                    message,
                    place: Some((file, line)),
                } => format!("{file}, line {line}: {message}"),
                other => format!("{}: {}", name, other.into_plugin_error(false).message()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, text: &str) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn lines_of_the_joined_chunk_map_back_to_their_files() {
        let sources = [
            source("lua/a.lua", "x = 1\ny = 2\n"),
            source("/etc/b.lua", "z = 3"),
        ];
        assert_eq!(joined(&sources), "x = 1\ny = 2\n\nz = 3");
        let map = SourceMap::of(&sources);
        assert_eq!(map.locate("sources", 2), Some(("a.lua".into(), 2)));
        assert_eq!(map.locate("sources", 4), Some(("b.lua".into(), 1)));
        assert_eq!(map.locate("sources", 9), None);
        assert_eq!(map.locate("pre-script", 1), Some(("pre-script".into(), 1)));
    }

    #[test]
    fn syntax_errors_name_their_file_and_line() {
        let sources = [source("a.lua", "x = 1\n"), source("lib/b.lua", "y = = 2")];
        let error = check_syntax(&sources, "", "").unwrap_err();
        assert!(error.starts_with("b.lua, line 1: "), "{error}");
        let error = check_syntax(&[], "local x = ", "").unwrap_err();
        assert!(error.starts_with("pre-script, line 1: "), "{error}");
        assert!(check_syntax(&sources[..1], "x = 2", "y = x").is_ok());
    }
}
