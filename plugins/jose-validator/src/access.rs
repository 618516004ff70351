//! Roles and scopes, as krakend-jose matches them (`CanAccess`,
//! `CanAccessNested`, `ScopesAnyMatcher`, `ScopesAllMatcher`), and finding a
//! claim by its dot path.

use serde_json::{Map, Value};

use crate::settings::Settings;

/// The object holding the last segment of a dot path and that segment
/// (`getNestedClaim`): `a.b.c` is `c` of `claims.a.b`. `None` when a parent
/// is missing or not an object.
pub fn nested<'a, 'k>(
    claims: &'a Map<String, Value>,
    path: &'k str,
) -> Option<(&'a Map<String, Value>, &'k str)> {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop()?;
    let mut current = claims;
    for segment in segments {
        current = current.get(segment)?.as_object()?;
    }
    Some((current, last))
}

/// Whether a key names a nested claim: it has a dot and is not a URL
/// (`https://example.com/roles` is one claim), krakend-jose's test.
pub fn is_nested_path(key: &str) -> bool {
    key.contains('.') && !key.starts_with("http")
}

/// Any of `required` among `claim`'s items (an array of strings, or a
/// space-separated string). Non-string items never match; krakend-jose
/// panics on them, which answers 500.
fn any_of(claim: &Value, required: &[String]) -> bool {
    match claim {
        Value::Array(items) => required
            .iter()
            .any(|r| items.iter().any(|i| i.as_str() == Some(r.as_str()))),
        Value::String(text) => {
            let given: Vec<&str> = text.split(' ').collect();
            required.iter().any(|r| given.contains(&r.as_str()))
        }
        _ => false,
    }
}

/// Whether the claims carry one of the required roles.
pub fn has_roles(claims: &Map<String, Value>, settings: &Settings) -> bool {
    if settings.roles.is_empty() {
        return true;
    }
    let key = settings.roles_key.as_str();
    let found = if settings.roles_key_is_nested && is_nested_path(key) {
        nested(claims, key).and_then(|(parent, last)| parent.get(last))
    } else {
        claims.get(key)
    };
    found.is_some_and(|claim| any_of(claim, &settings.roles))
}

/// Whether the claims carry the required scopes: any one of them, or all
/// with `scopes_matcher: all`. Scopes are a space-separated string, or in
/// KrakenD 2.x an array too.
pub fn has_scopes(claims: &Map<String, Value>, settings: &Settings) -> bool {
    if settings.scopes.is_empty() || settings.scopes_key.is_empty() {
        return true;
    }
    let key = settings.scopes_key.as_str();
    // krakend-jose splits any dotted scopes key, URLs included.
    let found = if key.contains('.') {
        nested(claims, key).and_then(|(parent, last)| parent.get(last))
    } else {
        claims.get(key)
    };
    let given: Vec<&str> = match found {
        Some(Value::String(text)) => text.split(' ').collect(),
        Some(Value::Array(items)) if settings.krakend2 && !items.is_empty() => {
            match items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
            {
                Some(items) => items,
                None => return false,
            }
        }
        _ => return false,
    };
    let mut wanted = settings.scopes.iter().map(|s| given.contains(&s.as_str()));
    if settings.all_scopes {
        wanted.all(|present| present)
    } else {
        wanted.any(|present| present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: Value, version: u64) -> Settings {
        let mut config =
            json!({"alg": "HS256", "jwk_local_path": "/k.json", "disable_jwk_security": true});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        Settings::parse(&config.to_string(), version).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn any_role_in_an_array_a_string_or_a_nested_claim() {
        let s = settings(json!({"roles": ["admin", "ops"]}), 3);
        assert!(has_roles(&claims(json!({"roles": ["user", "ops"]})), &s));
        assert!(has_roles(&claims(json!({"roles": "user admin"})), &s));
        assert!(!has_roles(&claims(json!({"roles": ["user", 1]})), &s));
        assert!(!has_roles(&claims(json!({})), &s));
        let nested = settings(
            json!({"roles": ["admin"], "roles_key": "realm_access.roles", "roles_key_is_nested": true}),
            3,
        );
        assert!(has_roles(
            &claims(json!({"realm_access": {"roles": ["admin"]}})),
            &nested
        ));
        let flat = settings(
            json!({"roles": ["admin"], "roles_key": "realm_access.roles"}),
            3,
        );
        assert!(has_roles(
            &claims(json!({"realm_access.roles": ["admin"]})),
            &flat
        ));
        assert!(!has_roles(
            &claims(json!({"realm_access": {"roles": ["admin"]}})),
            &flat
        ));
        let url = settings(
            json!({"roles": ["admin"], "roles_key": "https://ns.example/roles", "roles_key_is_nested": true}),
            3,
        );
        assert!(has_roles(
            &claims(json!({"https://ns.example/roles": ["admin"]})),
            &url
        ));
    }

    #[test]
    fn scopes_any_or_all_and_arrays_in_krakend_2_only() {
        let any = settings(
            json!({"scopes": ["read", "write"], "scopes_key": "scope"}),
            3,
        );
        let all = settings(
            json!({"scopes": ["read", "write"], "scopes_key": "scope", "scopes_matcher": "all"}),
            3,
        );
        let some = claims(json!({"scope": "read profile"}));
        let both = claims(json!({"scope": ["write", "read"]}));
        assert!(has_scopes(&some, &any));
        assert!(!has_scopes(&some, &all));
        assert!(has_scopes(&both, &all));
        let old = settings(json!({"scopes": ["read"], "scopes_key": "scope"}), 2);
        assert!(!has_scopes(&claims(json!({"scope": ["read"]})), &old));
        assert!(has_scopes(&claims(json!({"scope": "read"})), &old));
        let nested = settings(json!({"scopes": ["read"], "scopes_key": "a.scope"}), 3);
        assert!(has_scopes(
            &claims(json!({"a": {"scope": "read"}})),
            &nested
        ));
    }
}
