use std::time::Duration;

use super::*;

fn problems(text: &str, lint: bool) -> Vec<String> {
    match parse_str(text, lint) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config),
        Err(ConfigError::Invalid { problems }) => problems.iter().map(|p| p.to_string()).collect(),
        Err(other) => panic!("unexpected error {other}"),
    }
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn a_v3_config_reads_with_defaults() {
    let loaded = parse_str(
        r#"{"version":3,"host":["backend:9000/"],"endpoints":[
            {"endpoint":"/users/{id}","backend":[{"url_pattern":"/u/{id}?x=1"}]}]}"#,
        false,
    )
    .unwrap();
    let c = loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(c.port, 8080);
    assert_eq!(c.timeout, Duration::from_secs(2));
    let e = &c.endpoints[0];
    assert_eq!(e.method, Method::Get);
    assert_eq!(e.params, vec!["id"]);
    assert_eq!(e.input_headers, vec!["Content-Type"]);
    assert_eq!(e.output_encoding, OutputEncoding::Json);
    let b = &e.backends[0];
    assert_eq!(b.hosts, vec!["http://backend:9000"]);
    assert_eq!(b.method, Method::Get);
    assert_eq!(b.encoding, BackendEncoding::Json);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let p = problems(
        r#"{"version":3,"port":"80","timeout":"2 secs","endpoints":[
            {"endpoint":"/a","method":"FETCH","backend":[{"host":["h"],"url_pattern":"/x/{id}"}]},
            {"endpoint":"/__health","backend":[{"host":["h"],"url_pattern":"/"}]},
            {"endpoint":"/b","backend":[]},
            {"endpoint":"/c","timeout":"5","backend":[{"host":["h"],"url_pattern":"/", "encoding":"bson"}]},
            {"endpoint":"/a","backend":[{"host":["h"],"url_pattern":"/"}]},
            {"endpoint":"/a","backend":[{"host":["h"],"url_pattern":"/"}]},
            {"backend":[{"host":["h"]}]}
        ]}"#,
        false,
    );
    assert!(
        has(&p, "port: expected a whole number, found a string"),
        "{p:?}"
    );
    assert!(has(&p, "timeout: \"2 secs\" has an unknown unit"), "{p:?}");
    assert!(has(&p, "endpoints[0].method: \"FETCH\""), "{p:?}");
    assert!(
        has(
            &p,
            "endpoints[0].backend[0].url_pattern: {id} is not a parameter"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "endpoints[1].endpoint: \"/__health\" is reserved"),
        "{p:?}"
    );
    assert!(has(&p, "endpoints[2].backend: empty"), "{p:?}");
    assert!(
        has(
            &p,
            "endpoints[3].timeout: \"5\" has a number without a unit"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[3].backend[0].encoding: unknown encoding \"bson\""
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[5].endpoint: GET /a is already served by endpoints[0]"
        ),
        "{p:?}"
    );
    assert!(has(&p, "endpoints[6].endpoint: missing"), "{p:?}");
}

#[test]
fn missing_version_and_host_are_errors() {
    let p = problems(
        r#"{"endpoints":[{"endpoint":"/a","backend":[{"url_pattern":"/"}]}]}"#,
        false,
    );
    assert!(has(&p, "version: missing"), "{p:?}");
    assert!(has(&p, "endpoints[0].backend[0].host: no host"), "{p:?}");
}

#[test]
fn not_json_names_line_and_column() {
    match parse_str("{\n  \"version\": 3,,\n}", false) {
        Err(ConfigError::Syntax { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_and_unsupported_keys_warn_and_fail_with_lint() {
    let text = r#"{"version":3,"colour":"red","endpoints":[
        {"endpoint":"/a","backend":[{"host":["h"],"url_pattern":"/","sd":"dns"}]}],"tls":{}}"#;
    let loaded = parse_str(text, false).unwrap();
    let w: Vec<String> = loaded.warnings.iter().map(|p| p.to_string()).collect();
    assert!(has(&w, "colour: unknown key"), "{w:?}");
    assert!(
        has(&w, "tls: a KrakenD setting Sepia does not implement yet"),
        "{w:?}"
    );
    assert!(
        has(&w, "endpoints[0].backend[0].sd: a KrakenD setting"),
        "{w:?}"
    );
    let p = problems(text, true);
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn v2_layout_and_long_namespaces_read() {
    let loaded = parse_str(
        r#"{"version":2,"host":["http://h"],"endpoints":[{"endpoint":"/t","method":"POST",
            "headers_to_pass":["Authorization"],"querystring_params":["q"],
            "extra_config":{"github.com/devopsfaith/krakend-jose/signer":{"alg":"HS256"}},
            "backend":[{"url_pattern":"/t"}]}]}"#,
        false,
    )
    .unwrap();
    let e = &loaded.config.endpoints[0];
    assert_eq!(e.input_headers, vec!["Authorization"]);
    assert_eq!(e.input_query_strings, vec!["q"]);
    assert!(e.extra_config.get("auth/signer").is_some());
    assert_eq!(loaded.config.namespaces(), vec!["auth/signer"]);
}

#[test]
fn two_spellings_of_one_setting_are_an_error() {
    let p = problems(
        r#"{"version":3,"host":["h"],"endpoints":[{"endpoint":"/t","input_headers":["a"],"headers_to_pass":["b"],
            "extra_config":{"auth/signer":{},"github.com/devopsfaith/krakend-jose/signer":{}},
            "backend":[{"url_pattern":"/t"}]}]}"#,
        false,
    );
    assert!(
        has(
            &p,
            "endpoints[0].headers_to_pass: \"headers_to_pass\" and \"input_headers\""
        ),
        "{p:?}"
    );
    assert!(has(&p, "are one namespace"), "{p:?}");
}

#[test]
fn placeholders_are_found_in_path_and_query() {
    assert_eq!(placeholders("/a/{x}/b?c={y}&d=1").unwrap(), vec!["x", "y"]);
    assert!(placeholders("/a/{x").is_err());
    assert!(placeholders("/a/x}").is_err());
}

#[test]
fn a_param_must_fill_a_segment() {
    let p = problems(
        r#"{"version":3,"host":["h"],"endpoints":[{"endpoint":"/a/x{id}","backend":[{"url_pattern":"/"}]}]}"#,
        false,
    );
    assert!(has(&p, "must fill a whole path segment"), "{p:?}");
}

#[test]
fn shaping_reads_in_both_spellings() {
    let loaded = parse_str(
        r#"{"version":2,"host":["h"],"endpoints":[{"endpoint":"/a","backend":[{"url_pattern":"/",
            "target":"data","whitelist":["a.b","c"],"mapping":{"c":"d"},"group":"g","is_collection":true}]}]}"#,
        false,
    )
    .unwrap();
    let b = &loaded.config.endpoints[0].backends[0];
    assert!(b.is_collection);
    assert_eq!(b.shaping.target.as_deref(), Some("data"));
    assert_eq!(b.shaping.allow, vec!["a.b", "c"]);
    assert_eq!(b.shaping.mapping, vec![("c".to_owned(), "d".to_owned())]);
    assert_eq!(b.shaping.group.as_deref(), Some("g"));
    let p = problems(
        r#"{"version":3,"host":["h"],"endpoints":[{"endpoint":"/a","backend":[{"url_pattern":"/","allow":["a"],"deny":["b"],"mapping":{"x":1}}]}]}"#,
        false,
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[0].deny: \"allow\" and \"deny\" are both set"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "endpoints[0].backend[0].mapping.x: expected a string"),
        "{p:?}"
    );
}
