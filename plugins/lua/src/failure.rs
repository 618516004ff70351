//! How a script's failure reaches the client: `custom_error` with the status
//! it names, any other error as a 500 naming the file and line, as
//! krakend-lua's `ToError` words them in each generation.

use sepia_plugin_api::PluginError;

use crate::script::SourceMap;

/// What `custom_error(message [, status [, content type]])` raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomError {
    pub message: String,
    /// The status to answer with; `None` for krakend-lua's "no status"
    /// (one argument), which answers 500.
    pub status: Option<u16>,
    /// krakend-lua 2's third argument, the answer's content type.
    pub content_type: Option<String>,
}

impl std::fmt::Display for CustomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CustomError {}

/// Why a script was stopped before its end: the instruction budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSpent {
    pub instructions: u64,
}

impl std::fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the script was stopped after {} Lua instructions: does it loop forever?",
            self.instructions
        )
    }
}

impl std::error::Error for BudgetSpent {}

/// A script's failure, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `custom_error`.
    Custom(CustomError),
    /// Any other error, with where it happened when that is known.
    Script {
        message: String,
        place: Option<(String, usize)>,
    },
    /// Stopped by the instruction budget or the memory limit: the state is
    /// dropped, since it may be left half-changed.
    Stopped(String),
}

impl Failure {
    /// Sorts an error out of mlua: a `custom_error` or a budget stop inside
    /// a callback, or a Lua error whose place is in its text or traceback.
    pub fn from_lua(error: &mlua::Error, sources: &SourceMap) -> Failure {
        if let Some(custom) = find::<CustomError>(error) {
            return Failure::Custom(custom.clone());
        }
        if let Some(spent) = find::<BudgetSpent>(error) {
            return Failure::Stopped(spent.to_string());
        }
        if let mlua::Error::MemoryError(message) = innermost(error) {
            return Failure::Stopped(format!("the script ran out of memory: {message}"));
        }
        let (message, traceback) = split(error);
        let (message, place) = match strip_place(&message) {
            Some((chunk, line, rest)) => (rest.to_owned(), sources.locate(chunk, line)),
            None => (
                message.clone(),
                traceback.as_deref().and_then(|t| first_place(t, sources)),
            ),
        };
        Failure::Script { message, place }
    }

    /// The error the client gets: the status `custom_error` named, else
    /// 500; the message as each generation words it (krakend-lua 1.4 keeps
    /// only the message).
    pub fn into_plugin_error(self, krakend2: bool) -> PluginError {
        match self {
            Failure::Custom(custom) => PluginError::new(
                custom
                    .status
                    .filter(|s| (100..=599).contains(s))
                    .unwrap_or(500),
                custom.message,
            ),
            Failure::Script { message, place } => match place {
                Some((file, line)) if krakend2 => {
                    PluginError::internal(format!("{message} ({file}:L{line})"))
                }
                _ => PluginError::internal(message),
            },
            Failure::Stopped(message) => PluginError::internal(message),
        }
    }
}

fn innermost(error: &mlua::Error) -> &mlua::Error {
    match error {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        mlua::Error::WithContext { cause, .. } => innermost(cause),
        other => other,
    }
}

/// The first `T` raised by a Rust callback inside `error`.
fn find<T: std::error::Error + 'static>(error: &mlua::Error) -> Option<&T> {
    match error {
        mlua::Error::CallbackError { cause, .. } => find(cause),
        mlua::Error::WithContext { cause, .. } => find(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<T>(),
        _ => None,
    }
}

/// The error's own text, and the traceback of the callback it came from.
fn split(error: &mlua::Error) -> (String, Option<String>) {
    match error {
        mlua::Error::CallbackError { traceback, cause } => {
            let (message, inner) = split(cause);
            (message, inner.or_else(|| Some(traceback.clone())))
        }
        mlua::Error::WithContext { cause, .. } => split(cause),
        mlua::Error::RuntimeError(text) | mlua::Error::SyntaxError { message: text, .. } => {
            // mlua appends Lua's traceback to a Lua error's text.
            match text.split_once("\nstack traceback:") {
                Some((message, traceback)) => (message.to_owned(), Some(traceback.to_owned())),
                None => (text.clone(), None),
            }
        }
        other => (other.to_string(), None),
    }
}

/// `chunk:12: rest` → (`chunk`, 12, `rest`).
fn strip_place(message: &str) -> Option<(&str, usize, &str)> {
    let (chunk, after) = message.split_once(':')?;
    let (line, rest) = after.split_once(':')?;
    let line = line.parse().ok()?;
    Some((chunk, line, rest.trim_start()))
}

/// The first place in a traceback that is in the script.
fn first_place(traceback: &str, sources: &SourceMap) -> Option<(String, usize)> {
    traceback.lines().find_map(|line| {
        let (chunk, number, _) = strip_place(line.trim())?;
        sources.locate(chunk, number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_errors_keep_their_status_and_others_are_500_with_their_place() {
        let custom = Failure::Custom(CustomError {
            message: "teapot".into(),
            status: Some(418),
            content_type: None,
        });
        assert_eq!(
            custom.into_plugin_error(true),
            PluginError::new(418, "teapot")
        );
        let bare = Failure::Custom(CustomError {
            message: "no".into(),
            status: None,
            content_type: None,
        });
        assert_eq!(bare.into_plugin_error(true).status, 500);
        let script = Failure::Script {
            message: "attempt to call a nil value".into(),
            place: Some(("pre-script".into(), 1)),
        };
        assert_eq!(
            script.clone().into_plugin_error(true).message(),
            "attempt to call a nil value (pre-script:L1)"
        );
        assert_eq!(
            script.into_plugin_error(false).message(),
            "attempt to call a nil value"
        );
    }

    #[test]
    fn places_are_read_from_messages() {
        assert_eq!(
            strip_place("pre-script:3: boom: again"),
            Some(("pre-script", 3, "boom: again"))
        );
        assert_eq!(strip_place("no place here"), None);
    }
}
