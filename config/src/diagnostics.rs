//! Problems found in a configuration, each tied to the JSON path it is about.

use std::fmt;

/// What kind of problem a [`Problem`] is, which decides whether it stops the
/// gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The configuration is wrong: Sepia refuses to start.
    Invalid,
    /// A key neither KrakenD nor Sepia knows (a typo, most of the time): a
    /// warning, an error with `--lint`.
    UnknownKey,
    /// A KrakenD setting Sepia does not implement yet, so it would be
    /// ignored: a warning, an error with `--lint`.
    NotSupported,
    /// Valid, but most likely not what was meant: a warning, an error with
    /// `--lint`.
    Suspicious,
}

/// One problem, at one JSON path (`endpoints[2].backend[0].url_pattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
    /// Whether it stops start-up.
    pub kind: ProblemKind,
}

impl Problem {
    /// Whether this problem stops start-up; `lint` makes every problem do so.
    pub fn is_fatal(&self, lint: bool) -> bool {
        lint || self.kind == ProblemKind::Invalid
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Collects problems while a configuration is read.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub(crate) problems: Vec<Problem>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, path: &str, kind: ProblemKind, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message: message.into(),
            kind,
        });
    }

    pub(crate) fn invalid(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, ProblemKind::Invalid, message)
    }
}

/// Joins a parent path and a key: `endpoints[0]` + `backend` is
/// `endpoints[0].backend`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Indexes a path: `endpoints` + 2 is `endpoints[2]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
