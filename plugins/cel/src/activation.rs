//! The variables krakend-cel gives an expression, built from what the hook
//! sees: the request's method, path, parameters (lura capitalises their
//! first letter: `{id}` is `req_params.Id`), headers and query as lists of
//! values under Go's canonical names; the answer's completeness, status,
//! headers and data; the token's claims; and `now` as text. Only the
//! variables an expression list reads are built.

use std::{collections::HashMap, sync::Arc};

use cel::{Context, Env, Value};
use sepia_plugin_api::{canonical_header_name, lura_param_name, Header, Request, Response};

use crate::checks::NOW;

/// A context over the shared standard library, with `now` when the list
/// reads it (the clock and its formatting are most of a light check's cost).
pub fn context(env: &Arc<Env>, wants_now: bool, krakend2: bool) -> Context<'static, 'static> {
    let mut context = Context::with_env(Arc::clone(env));
    if wants_now {
        context.add_variable_from_value(NOW, now_text(krakend2));
    }
    context
}

/// `now` as krakend-cel writes it: Go's `2006-01-02T15:04:05.999Z07:00`
/// in version 3 (milliseconds, trailing zeros dropped), RFC 3339 to the
/// second in version 1/2; in local time, as Go's `time.Now()`.
pub fn now_text(krakend2: bool) -> String {
    let now = chrono::Local::now();
    let mut text = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    if krakend2 {
        let millis = now.timestamp_subsec_millis();
        if millis > 0 {
            let digits = format!("{millis:03}");
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
    }
    if now.offset().local_minus_utc() == 0 {
        text.push('Z');
    } else {
        text.push_str(&now.format("%:z").to_string());
    }
    text
}

/// Binds the request variables `wanted` names.
pub fn bind_request(
    context: &mut Context<'_, '_>,
    request: &Request,
    wanted: &dyn Fn(&str) -> bool,
) {
    if wanted("req_method") {
        context.add_variable_from_value("req_method", request.method.as_str().to_owned());
    }
    if wanted("req_path") {
        context.add_variable_from_value("req_path", request.path.as_str().to_owned());
    }
    if wanted("req_params") {
        let params: HashMap<String, Value> = request
            .params
            .iter()
            .map(|pair| {
                (
                    lura_param_name(pair.0.as_str()),
                    Value::from(pair.1.as_str()),
                )
            })
            .collect();
        context.add_variable_from_value("req_params", params);
    }
    if wanted("req_headers") {
        context.add_variable_from_value("req_headers", headers(&request.headers));
    }
    if wanted("req_querystring") {
        let mut query: HashMap<String, Vec<Value>> = HashMap::new();
        for (name, value) in form_urlencoded::parse(request.query.as_bytes()) {
            query
                .entry(name.into_owned())
                .or_default()
                .push(Value::from(value.into_owned()));
        }
        let query: HashMap<String, Value> = query
            .into_iter()
            .map(|(name, values)| (name, Value::List(Arc::new(values))))
            .collect();
        context.add_variable_from_value("req_querystring", query);
    }
}

/// Binds the response variables `wanted` names.
pub fn bind_response(
    context: &mut Context<'_, '_>,
    response: &Response,
    wanted: &dyn Fn(&str) -> bool,
) {
    if wanted("resp_completed") {
        context.add_variable_from_value("resp_completed", response.complete);
    }
    if wanted("resp_metadata_status") {
        context.add_variable_from_value("resp_metadata_status", i64::from(response.status));
    }
    if wanted("resp_metadata_headers") {
        context.add_variable_from_value("resp_metadata_headers", headers(&response.headers));
    }
    if wanted("resp_data") {
        // lura's data is the decoded object; an answer that is not one
        // (another encoding, a list) has none.
        let data = match serde_json::from_slice::<serde_json::Value>(&response.body) {
            Ok(value @ serde_json::Value::Object(_)) => from_json(&value),
            _ => Value::from(HashMap::<String, Value>::new()),
        };
        context.add_variable_from_value("resp_data", data);
    }
}

/// Binds `JWT`, the verified claims the validator left in the context.
pub fn bind_claims(context: &mut Context<'_, '_>, claims: &serde_json::Value) {
    context.add_variable_from_value(crate::checks::JWT, from_json(claims));
}

/// Go's `http.Header`: canonical names, each with its values in order.
fn headers(list: &[Header]) -> Value {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for header in list {
        let value = String::from_utf8_lossy(&header.value).into_owned();
        map.entry(canonical_header_name(header.name.as_str()))
            .or_default()
            .push(Value::from(value));
    }
    let map: HashMap<String, Value> = map
        .into_iter()
        .map(|(name, values)| (name, Value::List(Arc::new(values))))
        .collect();
    Value::from(map)
}

/// A JSON value as CEL's: whole numbers as `int` (`uint` past it), others
/// as `double`.
pub fn from_json(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        J::Object(fields) => {
            let map: HashMap<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect();
            Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_written_as_each_generation_writes_it() {
        let two = now_text(true);
        let one = now_text(false);
        assert!(one.len() == 20 || one.len() == 25, "{one}");
        assert!(!one.contains('.'), "{one}");
        assert!(two.starts_with(&one[..16]), "{two} {one}");
    }
}
