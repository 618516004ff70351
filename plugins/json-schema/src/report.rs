//! Validation errors in gojsonschema's words (its default locale), as
//! krakend-jsonschema lists them: `field: description`, the field dotted
//! from the root (`(root)` for the body itself, `user.tags.1` inside it).
//! Kinds gojsonschema has no words for keep the validator's own.

use jsonschema::{error::TypeKind, error::ValidationErrorKind, ValidationError};
use serde_json::Value;

/// `field: description` for one error.
pub fn describe(error: &ValidationError<'_>, schema: &Value) -> String {
    let field = field(error.instance_path.as_str());
    let description = description(error, &field, schema);
    format!("{field}: {description}")
}

/// A JSON pointer as gojsonschema's dotted context.
fn field(pointer: &str) -> String {
    if pointer.is_empty() {
        return "(root)".to_owned();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn description(error: &ValidationError<'_>, field: &str, schema: &Value) -> String {
    use ValidationErrorKind as K;
    match &error.kind {
        K::Type { kind } => format!(
            "Invalid type. Expected: {}, given: {}",
            expected_types(kind, error.schema_path.as_str(), schema),
            given_type(&error.instance)
        ),
        K::Required { property } => format!("{} is required", text_of(property)),
        K::Enum { options } => {
            let allowed = match options {
                Value::Array(items) => items
                    .iter()
                    .map(sepia_json::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                other => sepia_json::to_string(other),
            };
            format!("{field} must be one of the following: {allowed}")
        }
        K::Constant { expected_value } => format!(
            "{field} does not match: {}",
            sepia_json::to_string(expected_value)
        ),
        K::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|p| format!("Additional property {p} is not allowed"))
            .collect::<Vec<_>>()
            .join(", "),
        K::AdditionalItems { .. } => "No additional items allowed on array".to_owned(),
        K::AnyOf => "Must validate at least one schema (anyOf)".to_owned(),
        K::OneOfNotValid | K::OneOfMultipleValid => {
            "Must validate one and only one schema (oneOf)".to_owned()
        }
        K::Not { .. } => "Must not validate the schema (not)".to_owned(),
        K::FalseSchema => "False always fails validation".to_owned(),
        K::Contains => "At least one of the items must match".to_owned(),
        K::MinItems { limit } => format!("Array must have at least {limit} items"),
        K::MaxItems { limit } => format!("Array must have at most {limit} items"),
        K::UniqueItems => match first_duplicate(&error.instance) {
            Some((i, j)) => format!("array items[{i},{j}] must be unique"),
            None => "array items must be unique".to_owned(),
        },
        K::MinProperties { limit } => format!("Must have at least {limit} properties"),
        K::MaxProperties { limit } => format!("Must have at most {limit} properties"),
        K::PropertyNames { error } => format!(
            "Property name of \"{}\" does not match",
            text_of(&error.instance)
        ),
        K::MinLength { limit } => {
            format!("String length must be greater than or equal to {limit}")
        }
        K::MaxLength { limit } => format!("String length must be less than or equal to {limit}"),
        K::Pattern { pattern } => format!("Does not match pattern '{pattern}'"),
        K::Format { format } => format!("Does not match format '{format}'"),
        K::MultipleOf { multiple_of } => {
            format!("Must be a multiple of {}", go_float(*multiple_of))
        }
        K::Minimum { limit } => format!("Must be greater than or equal to {}", number(limit)),
        K::ExclusiveMinimum { limit } => format!("Must be greater than {}", number(limit)),
        K::Maximum { limit } => format!("Must be less than or equal to {}", number(limit)),
        K::ExclusiveMaximum { limit } => format!("Must be less than {}", number(limit)),
        _ => error.to_string(),
    }
}

/// The `type` keyword as gojsonschema prints it: one name, or `[a,b]` in
/// the schema's order.
fn expected_types(kind: &TypeKind, schema_path: &str, schema: &Value) -> String {
    match schema.pointer(schema_path) {
        Some(Value::String(name)) => return name.clone(),
        Some(Value::Array(names)) => {
            let names: Vec<String> = names.iter().map(text_of).collect();
            return format!("[{}]", names.join(","));
        }
        // Reached through a `$ref`: the path is not one into this schema.
        _ => {}
    }
    match kind {
        TypeKind::Single(one) => one.to_string(),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
            format!("[{}]", names.join(","))
        }
    }
}

/// gojsonschema's name for what was given: a whole number is an
/// `integer`, other numbers `number`.
fn given_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_whole(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_whole(n: &serde_json::Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// A string as it is, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => sepia_json::to_string(other),
    }
}

fn number(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) => go_float(f),
        None => text_of(limit),
    }
}

/// A limit as gojsonschema prints it: a `big.Float`'s `%v`, which is
/// `%.10g`: ten significant digits, an exponent (`1e+21`) past them.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let exponent = f.abs().log10().floor() as i32;
    if (-4..10).contains(&exponent) {
        // Fixed notation, rounded to ten significant digits, no trailing
        // zeros.
        let decimals = (9 - exponent).max(0) as usize;
        let fixed = format!("{f:.decimals$}");
        if fixed.contains('.') {
            fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            fixed
        }
    } else {
        let scientific = format!("{f:.9e}");
        let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// The first pair of equal items, as gojsonschema finds it: the earlier
/// item's index and the later's.
fn first_duplicate(value: &Value) -> Option<(usize, usize)> {
    let items = value.as_array()?;
    for j in 0..items.len() {
        for i in 0..j {
            if jsonschema_equal(&items[i], &items[j]) {
                return Some((i, j));
            }
        }
    }
    None
}

/// JSON Schema's equality: numbers by value (`1` equals `1.0`).
fn jsonschema_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| jsonschema_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| jsonschema_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_dotted_from_the_root() {
        assert_eq!(field(""), "(root)");
        assert_eq!(field("/user/tags/1"), "user.tags.1");
        assert_eq!(field("/a~1b/c~0d"), "a/b.c~d");
    }

    #[test]
    fn limits_print_as_go_big_floats() {
        for (f, text) in [
            (5.0, "5"),
            (0.5, "0.5"),
            (1.25, "1.25"),
            (1e21, "1e+21"),
            (123456789.0, "123456789"),
            (1e10, "1e+10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.0, "-3"),
        ] {
            assert_eq!(go_float(f), text, "{f}");
        }
    }

    #[test]
    fn unique_items_name_the_first_pair() {
        let items = serde_json::json!([1, 2, 3, 2.0, 1]);
        assert_eq!(first_duplicate(&items), Some((1, 3)));
    }
}
