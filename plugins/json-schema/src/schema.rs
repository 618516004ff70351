//! The compiled schema and what the request hook answers, per generation.
//!
//! krakend-jsonschema reads the whole body and validates it with
//! gojsonschema, which decodes only the first JSON value (Go's
//! `json.Decoder`: trailing bytes are ignored). A body that does not
//! validate is a 400 in both generations. The others differ:
//! - KrakenD 2.x (`"version": 3`): an empty body is a 400 `could not
//!   validate an empty body`, and one that is not JSON a 400 too;
//! - KrakenD 1.x (lura 1.4, krakend-jsonschema 1.4): both fail with a plain
//!   error, which lura answers as a 500 (an empty body is Go's `EOF`).

use jsonschema::{Draft, Validator};
use sepia_plugin_api::{Hooks, Modifier, PluginError, Request, RequestFlow};
use serde_json::Value;

use crate::report;

/// More errors than this are summed up in one last line: a body is at most
/// `sepia.max_request_body`, but its errors' text could be many times that.
const MAX_REPORTED: usize = 1000;

/// A compiled schema and the generation whose answers it gives.
pub struct BodyValidator {
    validator: Validator,
    /// The schema as configured, to name a `type` keyword's types in its
    /// own order as gojsonschema does.
    schema: Value,
    krakend2: bool,
}

impl BodyValidator {
    /// Compiles the namespace's value. The draft is the one `$schema` names;
    /// without it, draft 7, the latest gojsonschema knows (its "hybrid"
    /// default reads draft 4, 6 and 7 keywords alike, and draft 7 is the
    /// superset of the three but for draft 4's boolean `exclusiveMaximum`).
    pub fn compile(config_json: &str, version: u64) -> Result<Self, String> {
        let schema: Value = serde_json::from_str(config_json)
            .map_err(|e| format!("the schema is not JSON: {e}"))?;
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err(format!(
                "the value must be a JSON Schema (an object, or true or false), not {}",
                sepia_json::type_name(&schema)
            ));
        }
        let draft = Draft::Draft7.detect(&schema).map_err(|e| {
            format!(
                "\"$schema\" names no draft this validator knows (4, 6, 7, 2019-09, 2020-12): {e}"
            )
        })?;
        let validator = jsonschema::options()
            .with_draft(draft)
            // gojsonschema checks `format` in every draft.
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| {
                let at = e.schema_path.as_str();
                let at = if at.is_empty() { "/" } else { at };
                format!("the schema does not compile at {at}: {e}")
            })?;
        Ok(Self {
            validator,
            schema,
            krakend2: version >= 3,
        })
    }

    /// What krakend-jsonschema answers for a body that is not a JSON value.
    fn malformed(&self, message: String) -> PluginError {
        if self.krakend2 {
            PluginError::bad_request(message)
        } else {
            PluginError::internal(message)
        }
    }

    /// `Ok` when `body` validates; the client's error otherwise.
    pub fn check(&self, body: &[u8]) -> Result<(), PluginError> {
        if body.is_empty() && self.krakend2 {
            return Err(PluginError::bad_request("could not validate an empty body"));
        }
        let instance = match serde_json::Deserializer::from_slice(body)
            .into_iter::<Value>()
            .next()
        {
            Some(Ok(instance)) => instance,
            Some(Err(e)) => return Err(self.malformed(format!("invalid JSON: {e}"))),
            // Only white space: Go's decoder says `EOF`.
            None => return Err(self.malformed("EOF".to_owned())),
        };
        // The common case walks the schema once, collecting nothing.
        if self.validator.is_valid(&instance) {
            return Ok(());
        }
        let mut lines = Vec::new();
        let mut more = 0usize;
        for error in self.validator.iter_errors(&instance) {
            if lines.len() < MAX_REPORTED {
                lines.push(format!("- {}", report::describe(&error, &self.schema)));
            } else {
                more += 1;
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        if more > 0 {
            lines.push(format!("- and {more} more errors"));
        }
        Err(PluginError::bad_request(lines.join("\n")))
    }
}

impl Modifier for BodyValidator {
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, request: &mut Request) -> Result<RequestFlow, PluginError> {
        self.check(&request.body)?;
        Ok(RequestFlow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3(schema: &str) -> BodyValidator {
        BodyValidator::compile(schema, 3).unwrap()
    }

    fn error(validator: &BodyValidator, body: &str) -> (u16, String) {
        let e = validator.check(body.as_bytes()).unwrap_err();
        (e.status, e.message().to_owned())
    }

    #[test]
    fn the_suites_schema_refuses_an_object_and_takes_a_number() {
        let numbers = v3(r#"{"type": "number"}"#);
        assert_eq!(
            error(&numbers, r#"{"foo": 42}"#),
            (
                400,
                "- (root): Invalid type. Expected: number, given: object".to_owned()
            )
        );
        assert!(numbers.check(b"42").is_ok());
        assert!(numbers.check(b"4.2e1").is_ok());
    }

    #[test]
    fn empty_and_malformed_bodies_per_generation() {
        let schema = r#"{"type": "object"}"#;
        let (two, one) = (v3(schema), BodyValidator::compile(schema, 2).unwrap());
        assert_eq!(
            error(&two, ""),
            (400, "could not validate an empty body".to_owned())
        );
        assert_eq!(error(&one, ""), (500, "EOF".to_owned()));
        assert_eq!(error(&two, "  \n").0, 400);
        assert_eq!(error(&two, "{nope").0, 400);
        assert_eq!(error(&one, "{nope").0, 500);
        // Go's decoder reads the first value and stops.
        assert!(two.check(br#"{"a": 1} trailing"#).is_ok());
    }

    #[test]
    fn every_error_a_line_with_its_field() {
        let schema = v3(r#"{
            "type": "object", "required": ["user", "age"],
            "properties": {
                "user": {"type": "string", "minLength": 3},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}}
            }
        }"#);
        let (status, message) = error(&schema, r#"{"user": "jo", "tags": ["a", "c"]}"#);
        assert_eq!(status, 400);
        let mut lines: Vec<&str> = message.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            vec![
                r#"- (root): age is required"#,
                r#"- tags.1: tags.1 must be one of the following: "a", "b""#,
                r#"- user: String length must be greater than or equal to 3"#,
            ]
        );
    }

    #[test]
    fn drafts_are_read_from_schema_and_formats_are_checked() {
        let four = v3(r#"{"$schema": "http://json-schema.org/draft-04/schema#",
            "type": "number", "maximum": 5, "exclusiveMaximum": true}"#);
        assert!(four.check(b"4").is_ok());
        assert_eq!(error(&four, "5").1, "- (root): Must be less than 5");
        let email = v3(r#"{"type": "string", "format": "email"}"#);
        assert_eq!(
            error(&email, r#""not an address""#).1,
            "- (root): Does not match format 'email'"
        );
    }

    #[test]
    fn bad_schemas_are_refused_with_the_reason() {
        for (schema, wanted) in [
            ("[1]", "not an array"),
            (r#"{"type": "nope"}"#, "does not compile at"),
            (
                r#"{"$schema": "https://example.invalid/x"}"#,
                "names no draft",
            ),
        ] {
            let err = BodyValidator::compile(schema, 3).err().unwrap();
            assert!(err.contains(wanted), "{schema}: {err}");
        }
    }
}
