use std::time::Duration;

use super::*;

fn problems(text: &str, lint: bool) -> Vec<String> {
    match parse_str(text, lint) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config),
        Err(ConfigError::Invalid { problems }) => problems.iter().map(|p| p.to_string()).collect(),
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// A valid configuration's warnings, as text.
fn warnings_of(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(|w| w.to_string()).collect()
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
            {"endpoint":"/c","timeout":"5","backend":[{"host":["h"],"url_pattern":"/", "encoding":"NO-OP"}]},
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
        has(&p, "endpoints[3].backend[0].encoding: write \"no-op\""),
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
        {"endpoint":"/a","backend":[{"host":["h"],"url_pattern":"/","encoding":"yaml"}]}],"async_agent":[]}"#;
    let loaded = parse_str(text, false).unwrap();
    let w = warnings_of(&loaded);
    assert!(has(&w, "colour: unknown key"), "{w:?}");
    assert!(
        has(
            &w,
            "async_agent: a KrakenD setting Sepia does not implement yet"
        ),
        "{w:?}"
    );
    assert!(
        has(
            &w,
            "endpoints[0].backend[0].encoding: KrakenD registers no \"yaml\" decoder"
        ),
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

#[test]
fn proxy_static_and_sequential_are_read_by_the_gateway() {
    let loaded = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a/{id}","extra_config":{"proxy":{"sequential":true,"static":{"strategy":"errored","data":{"fallback":true}}}},
             "backend":[{"url_pattern":"/u/{id}"},{"url_pattern":"/p/{resp0_user.id}?tag={resp0_tags}",
                "extra_config":{"backend/http":{"return_error_details":"posts"}}}]},
            {"endpoint":"/b","extra_config":{"github.com/devopsfaith/krakend/proxy":{"static":{"data":{"x":1}}}},
             "backend":[{"url_pattern":"/b","extra_config":{"github.com/devopsfaith/krakend/http":{"return_error_code":true}}}]}
        ]}"#,
        false,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let a = &loaded.config.endpoints[0];
    assert!(a.sequential);
    let fixed = a.static_response.as_ref().unwrap();
    assert_eq!(fixed.strategy, StaticStrategy::Errored);
    assert_eq!(fixed.data["fallback"], true);
    assert_eq!(a.backends[0].errors, BackendErrors::Default);
    assert_eq!(a.backends[1].errors, BackendErrors::Details("posts".into()));
    let b = &loaded.config.endpoints[1];
    assert!(!b.sequential);
    assert_eq!(
        b.static_response.as_ref().unwrap().strategy,
        StaticStrategy::Always
    );
    assert_eq!(b.backends[0].errors, BackendErrors::StatusCode);
    // Served by the gateway: no plugin is needed for them.
    assert!(loaded.config.namespaces().is_empty());
}

#[test]
fn proxy_and_backend_http_mistakes_are_reported_with_their_paths() {
    let p = problems(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a","extra_config":{"proxy":{"static":{"strategy":"sometimes"}}},
             "backend":[{"url_pattern":"/a"},{"url_pattern":"/b/{resp0_id}"}]},
            {"endpoint":"/b","extra_config":{"proxy":{"sequential":true}},
             "backend":[{"url_pattern":"/a/{resp1_id}"},{"url_pattern":"/b/{resp0}/{Resp0_id}",
               "extra_config":{"backend/http":{"return_error_details":""}}}]}
        ]}"#,
        false,
    );
    assert!(
        has(
            &p,
            "endpoints[0].extra_config.proxy.static.strategy: unknown strategy \"sometimes\""
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "endpoints[0].extra_config.proxy.static.data: missing"),
        "{p:?}"
    );
    assert!(
        has(&p, "endpoints[0].backend[1].url_pattern: {resp0_id} uses backend 0's response, which needs sequential calls"),
        "{p:?}"
    );
    assert!(
        has(&p, "endpoints[1].backend[0].url_pattern: {resp1_id} uses backend 1's response, but this is backend 0"),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[1].backend[1].url_pattern: {resp0} would pass a whole response, which KrakenD refuses"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "{Resp0_id}: KrakenD reads an earlier response only from a lower-case {resp0_...}"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[1].backend[1].extra_config.backend/http.return_error_details: empty"
        ),
        "{p:?}"
    );
}

#[test]
fn proxy_settings_krakend_ignores_are_named() {
    let loaded = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a","output_encoding":"no-op",
             "extra_config":{"proxy":{"combiner":"x","static":{"data":{"x":1}}}},
             "backend":[{"url_pattern":"/a","encoding":"no-op",
               "extra_config":{"backend/http":{"return_error_details":"a","return_error_code":true}}}]}
        ]}"#,
        false,
    )
    .unwrap();
    let warnings = warnings_of(&loaded);
    assert!(
        has(&warnings, "endpoints[0].extra_config.proxy.combiner: KrakenD CE registers no response combiner \"x\""),
        "{warnings:?}"
    );
    assert!(
        has(
            &warnings,
            "endpoints[0].extra_config.proxy.static: a no-op endpoint"
        ),
        "{warnings:?}"
    );
    assert!(
        has(
            &warnings,
            "return_error_code: ignored: return_error_details is set too"
        ),
        "{warnings:?}"
    );
}

#[test]
fn service_discovery_and_host_sanitizing_are_checked() {
    let loaded = parse_str(
        r#"{"version":3,"dns_cache_ttl":"5s","endpoints":[{"endpoint":"/a","backend":[
            {"host":["_api._tcp.service.consul","other"],"url_pattern":"/a","sd":"dns",
             "sd_scheme":"https","disable_host_sanitize":true}]}]}"#,
        false,
    )
    .unwrap();
    let backend = &loaded.config.endpoints[0].backends[0];
    assert_eq!(
        backend.dns_srv,
        Some(crate::DnsSrv {
            name: "_api._tcp.service.consul".into(),
            scheme: "https".into()
        })
    );
    assert!(backend.hosts.is_empty());
    assert_eq!(loaded.config.dns_cache_ttl, Duration::from_secs(5));
    let warnings = warnings_of(&loaded);
    assert!(
        has(
            &warnings,
            "endpoints[0].backend[0].host[1]: only the first host is looked up"
        ),
        "{warnings:?}"
    );
    // KrakenD 1.x: http always, every 30 s.
    let loaded = parse_str(
        r#"{"version":2,"dns_cache_ttl":"5s","endpoints":[{"endpoint":"/a","backend":[
            {"host":["api.consul"],"url_pattern":"/a","sd":"dns","sd_scheme":"https","disable_host_sanitize":true}]}]}"#,
        false,
    )
    .unwrap();
    let backend = &loaded.config.endpoints[0].backends[0];
    assert_eq!(
        backend.dns_srv.as_ref().map(|d| d.scheme.as_str()),
        Some("http")
    );
    assert_eq!(loaded.config.dns_cache_ttl, Duration::from_secs(30));
    let warnings = warnings_of(&loaded);
    assert!(
        has(&warnings, "dns_cache_ttl: KrakenD 1.x has no such setting"),
        "{warnings:?}"
    );
    assert!(
        has(&warnings, "sd_scheme: KrakenD 1.x has no such setting"),
        "{warnings:?}"
    );
    // A name KrakenD would sanitise into a URL, an unknown scheme, no host.
    let p = problems(
        r#"{"version":3,"endpoints":[{"endpoint":"/a","backend":[
            {"host":["api.consul"],"url_pattern":"/a","sd":"dns"},
            {"host":["api.consul"],"url_pattern":"/a","sd":"dns","sd_scheme":"ftp","disable_host_sanitize":true},
            {"url_pattern":"/a","sd":"dns","disable_host_sanitize":true}]}]}"#,
        false,
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[0].host: with \"sd\": \"dns\" the host is a DNS SRV name"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[1].sd_scheme: \"ftp\" is not a scheme"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[2].host: \"sd\": \"dns\" looks this backend's first host up"
        ),
        "{p:?}"
    );
    let p = problems(
        r#"{"version":3,"endpoints":[{"endpoint":"/a","backend":[
            {"host":["h:8080"],"url_pattern":"/a","sd":"consul","disable_host_sanitize":true}]}]}"#,
        false,
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[0].sd: unknown service discovery \"consul\""
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "endpoints[0].backend[0].host[0]: \"h:8080\": with disable_host_sanitize"
        ),
        "{p:?}"
    );
}

#[test]
fn mapping_to_a_dotted_name_renames_to_its_first_part_as_krakend_does() {
    let loaded = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[{"endpoint":"/a","backend":[
            {"url_pattern":"/a","mapping":{"id":"user.id","name":"full_name"}}]}]}"#,
        false,
    )
    .unwrap();
    assert_eq!(
        loaded.config.endpoints[0].backends[0].shaping.mapping,
        vec![
            ("id".to_owned(), "user".to_owned()),
            ("name".to_owned(), "full_name".to_owned())
        ]
    );
    let warnings = warnings_of(&loaded);
    assert!(
        has(
            &warnings,
            "endpoints[0].backend[0].mapping.id: \"user.id\" would nest the value"
        ),
        "{warnings:?}"
    );
}

#[test]
fn a_bare_cache_ttl_is_seconds_in_version_2_files_as_lura_1_reads_it() {
    let config = |version: u64, top: &str, endpoint: &str| {
        format!(
            r#"{{"version":{version},"host":["h"],"cache_ttl":{top},"endpoints":[
                {{"endpoint":"/a","cache_ttl":{endpoint},"backend":[{{"url_pattern":"/"}}]}},
                {{"endpoint":"/b","backend":[{{"url_pattern":"/"}}]}}]}}"#
        )
    };
    let v2 = parse_str(&config(2, "60", "300"), false).unwrap();
    assert!(v2.warnings.is_empty(), "{:?}", v2.warnings);
    assert_eq!(
        v2.config.endpoints[0].cache_ttl,
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        v2.config.endpoints[1].cache_ttl,
        Some(Duration::from_secs(60))
    );
    // Strings are Go durations in every generation.
    let strings = parse_str(&config(2, r#""1m""#, r#""5m""#), false).unwrap();
    assert_eq!(
        strings.config.endpoints[0].cache_ttl,
        Some(Duration::from_secs(300))
    );
    let v3 = parse_str(&config(3, r#""1m""#, r#""5m""#), false).unwrap();
    assert_eq!(
        v3.config.endpoints[0].cache_ttl,
        Some(Duration::from_secs(300))
    );
    // A bare number in a version-3 file is a duration number: nanoseconds,
    // never what was meant, so it is named.
    let bare = parse_str(&config(3, r#""1m""#, "300"), false).unwrap();
    assert!(
        has(
            &warnings_of(&bare),
            "endpoints[0].cache_ttl: a bare number is read as nanoseconds"
        ),
        "{:?}",
        bare.warnings
    );
    assert!(has(
        &problems(&config(3, r#""1m""#, "300"), true),
        "endpoints[0].cache_ttl"
    ));
    assert!(has(
        &problems(&config(2, "60", "-5"), false),
        "endpoints[0].cache_ttl: must be a whole number of seconds"
    ));
}

#[test]
fn sepia_switches_are_read_from_their_own_namespace_and_checked() {
    let config = |sepia: &str| {
        format!(
            r#"{{"version":3,"host":["h"],"extra_config":{{"sepia":{sepia}}},"endpoints":[
                {{"endpoint":"/a","backend":[{{"url_pattern":"/"}}]}}]}}"#
        )
    };
    let off = parse_str(r#"{"version":3,"host":["h"],"endpoints":[]}"#, false).unwrap();
    assert_eq!(off.config.sepia, SepiaSwitches::default());
    assert_eq!(
        off.config.sepia.listed(),
        vec![
            ("json_errors", false),
            ("pass_backend_status", false),
            ("own_identity", false),
            ("pass_backend_errors", false),
            ("append_forwarded_for", false),
            ("plugins_endpoint", false)
        ]
    );
    let on = parse_str(&config(r#"{"json_errors":true}"#), false).unwrap();
    assert!(on.config.sepia.json_errors);
    // Read by the configuration model: no plugin is looked for.
    assert!(on.config.extra_config.get("sepia").is_none());
    let typo = parse_str(&config(r#"{"json_error":true}"#), false).unwrap();
    assert!(has(
        &warnings_of(&typo),
        "extra_config.sepia.json_error: unknown key"
    ));
    assert!(has(
        &problems(&config(r#"{"json_errors":"yes"}"#), false),
        "extra_config.sepia.json_errors"
    ));
    let capped = parse_str(&config(r#"{"max_connections":5000}"#), false).unwrap();
    assert_eq!(capped.config.sepia.max_connections, Some(5000));
    assert!(has(
        &problems(&config(r#"{"max_connections":0}"#), false),
        "extra_config.sepia.max_connections: 0 would serve nobody"
    ));
}

#[test]
fn jwt_claims_in_url_patterns_need_a_validator() {
    let with = r#"{"version":3,"host":["http://b"],"endpoints":[
        {"endpoint":"/me","backend":[{"url_pattern":"/u/{JWT.sub}/{JWT.http://example.com/custom}"}],
         "extra_config":{"github.com/devopsfaith/krakend-jose/validator":{"alg":"HS256"}}}]}"#;
    assert!(parse_str(with, false).is_ok());
    let without = r#"{"version":3,"host":["http://b"],"endpoints":[
        {"endpoint":"/me","backend":[{"url_pattern":"/u/{JWT.sub}"}]},
        {"endpoint":"/you","backend":[{"url_pattern":"/u/{JWT.}"}],
         "extra_config":{"auth/validator":{"alg":"HS256"}}}]}"#;
    let found = problems(without, false);
    assert!(
        has(&found, "endpoints[0].backend[0].url_pattern")
            && has(&found, "validates no token: add \"auth/validator\""),
        "{found:?}"
    );
    assert!(has(&found, "{JWT.} names no claim"), "{found:?}");
}

#[test]
fn flatmap_filter_is_read_and_its_mistakes_are_named() {
    let loaded = parse_str(
        r#"{"version":3,"host":["http://b"],"endpoints":[{"endpoint":"/f","backend":[
            {"url_pattern":"/c","is_collection":true,"allow":["ignored"],"extra_config":{"proxy":{"flatmap_filter":[
                {"type":"move","args":["collection","paths"]},
                {"type":"del","args":["paths.*.i","paths.*.j"]},
                {"type":"append","args":["a","b"]}]}}}]}]}"#,
        false,
    )
    .unwrap();
    let ops = loaded.config.endpoints[0].backends[0]
        .shaping
        .flatmap
        .clone()
        .unwrap();
    assert_eq!(ops.len(), 3);
    assert_eq!(
        ops[1],
        FlatmapOp::Del(vec![
            vec!["paths".into(), "*".into(), "i".into()],
            vec!["paths".into(), "*".into(), "j".into()]
        ])
    );
    let found = problems(
        r#"{"version":3,"host":["http://b"],"endpoints":[{"endpoint":"/f","backend":[
            {"url_pattern":"/c","extra_config":{"proxy":{"flatmap_filter":[
                {"type":"copy","args":["a","b"]},{"type":"move","args":["a"]},{"type":"del"}]}}}]}]}"#,
        false,
    );
    for needle in [
        "flatmap_filter[0]: \"type\" \"copy\" is not move, append or del",
        "flatmap_filter[1]: \"move\" takes two paths",
        "flatmap_filter[2]: \"args\" must be",
    ] {
        assert!(has(&found, needle), "{needle}: {found:?}");
    }
}

#[test]
fn tls_is_read_as_each_generation_reads_it() {
    use crate::TlsVersion;
    let v3 = parse_str(
        r#"{"version":3,"tls":{"public_key":"c.pem","private_key":"k.pem",
            "keys":[{"public_key":"c2.pem","private_key":"k2.pem"}],
            "cipher_suites":[49199],"curve_preferences":[23],"enable_mtls":true,
            "ca_certs":["ca.pem"],"disable_system_ca_pool":true}}"#,
        false,
    )
    .unwrap();
    let tls = v3.config.tls.expect("tls");
    assert_eq!(tls.keys.len(), 2);
    assert_eq!(tls.keys[1].json_path, "tls.keys[0]");
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::Tls13, TlsVersion::Tls13)
    );
    assert_eq!(tls.cipher_suites, vec![49199]);
    assert!(tls.enable_mtls && tls.disable_system_ca_pool);
    // lura 1.4: TLS 1.2 by default, no TLS13, no lists of keys or CAs.
    let v2 = parse_str(
        r#"{"version":2,"tls":{"public_key":"c.pem","private_key":"k.pem","max_version":"TLS13","ca_certs":["x"]}}"#,
        false,
    )
    .unwrap();
    let w = warnings_of(&v2);
    let tls = v2.config.tls.expect("tls");
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::Tls12, TlsVersion::Tls12)
    );
    assert!(tls.ca_certs.is_empty());
    assert!(has(&w, "tls.max_version: KrakenD 1.x"), "{w:?}");
    assert!(has(&w, "tls.ca_certs: KrakenD 1.x"), "{w:?}");
    for (text, says) in [
        (
            r#"{"version":3,"tls":{}}"#,
            "tls.public_key: public key not defined",
        ),
        (
            r#"{"version":3,"tls":{"public_key":"c"}}"#,
            "tls.private_key: private key not defined",
        ),
        (
            r#"{"version":3,"tls":{"public_key":"c","private_key":"k","max_version":"TLS10"}}"#,
            "TLS12 is the lowest",
        ),
        (
            r#"{"version":3,"tls":{"public_key":"c","private_key":"k","min_version":"TLS13","max_version":"TLS12"}}"#,
            "is above",
        ),
        (
            r#"{"version":3,"tls":{"public_key":"c","private_key":"k","cipher_suites":["x"]}}"#,
            "tls.cipher_suites[0]",
        ),
    ] {
        let err = parse_str(text, false).unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
    let off = parse_str(r#"{"version":3,"tls":{"disabled":true}}"#, false).unwrap();
    assert!(off.config.tls.is_none());
}

#[test]
fn client_tls_is_read_in_version_3_only() {
    let v3 = parse_str(
        r#"{"version":3,"client_tls":{"ca_certs":["ca.pem"],"min_version":"TLS12",
            "client_certs":[{"certificate":"c.pem","private_key":"k.pem"}]}}"#,
        false,
    )
    .unwrap();
    let tls = v3.config.backend_tls.expect("client_tls");
    assert_eq!(tls.ca_certs, vec!["ca.pem"]);
    assert_eq!(tls.min_version, crate::TlsVersion::Tls12);
    assert_eq!(tls.max_version, crate::TlsVersion::Tls13);
    assert_eq!(tls.client_certs[0].json_path, "client_tls.client_certs[0]");
    let insecure = parse_str(r#"{"version":3,"allow_insecure_connections":true}"#, false).unwrap();
    assert!(
        insecure
            .config
            .backend_tls
            .unwrap()
            .allow_insecure_connections
    );
    let v2 = parse_str(r#"{"version":2,"client_tls":{"ca_certs":["x"]}}"#, false).unwrap();
    assert!(v2.config.backend_tls.is_none());
    assert!(has(&warnings_of(&v2), "client_tls: KrakenD 1.x"));
    for (text, says) in [
        (
            r#"{"version":3,"client_tls":{"disable_system_ca_pool":true}}"#,
            "no backend certificate could be trusted",
        ),
        (
            r#"{"version":3,"client_tls":{"client_certs":[{"certificate":"c"}]}}"#,
            "client_tls.client_certs[0]: needs both",
        ),
    ] {
        let err = parse_str(text, false).unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::parse_str;

    /// Values of the shapes and keys a KrakenD file has, wrong types and
    /// all: what a reader meets in users' files.
    fn setting() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "", "/", "/a/{id}", "{x}", "1s", "-1s", "json", "no-op", "xml", "GET", "TLS13", "*"
            ])
            .prop_map(|s| Value::String(s.to_owned())),
            ".{0,8}".prop_map(Value::String),
        ];
        let keys = prop::sample::select(vec![
            "endpoint",
            "method",
            "backend",
            "url_pattern",
            "host",
            "timeout",
            "encoding",
            "output_encoding",
            "extra_config",
            "input_headers",
            "input_query_strings",
            "cache_ttl",
            "concurrent_calls",
            "is_collection",
            "target",
            "group",
            "allow",
            "deny",
            "mapping",
            "tls",
            "public_key",
            "private_key",
            "sepia",
            "router",
            "proxy",
            "max_connections",
            "json_errors",
            "flatmap_filter",
            "static",
            "sequential",
        ]);
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_never_a_panic(text in ".{0,64}") {
            let _ = parse_str(&text, false);
        }

        #[test]
        fn any_file_shape_is_read_or_refused_with_its_problems(
            endpoints in prop::collection::vec(setting(), 0..4),
            extra in setting(),
            version in 0u64..5,
        ) {
            let file = json!({"version": version, "endpoints": endpoints, "extra_config": extra});
            match parse_str(&file.to_string(), false) {
                Ok(loaded) => prop_assert!(loaded.config.version >= 1),
                // A refusal always names what is wrong.
                Err(error) => prop_assert!(!error.to_string().trim().is_empty()),
            }
        }
    }
}

#[test]
fn claims_checks_need_a_validator() {
    let text = r#"{"version":3,"endpoints":[
        {"endpoint":"/a","backend":[{"host":["http://x"],"url_pattern":"/"}],
         "extra_config":{"validation/cel":[{"check_expr":"size(JWT.roles) > 1"}]}},
        {"endpoint":"/b","backend":[{"host":["http://x"],"url_pattern":"/"}],
         "extra_config":{"validation/cel":[{"check_expr":"size(JWT.roles) > 1"}],
                         "auth/validator":{"alg":"HS256"}}}]}"#;
    let found = problems(text, false);
    assert!(
        has(&found, "endpoints[0].extra_config.\"validation/cel\"")
            && has(&found, "validates no token"),
        "{found:?}"
    );
    assert!(!has(&found, "endpoints[1]"), "{found:?}");
}

#[test]
fn shadow_backends_are_read_and_an_endpoint_of_only_shadows_refused() {
    let loaded = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a","backend":[{"url_pattern":"/a"},
              {"url_pattern":"/copy","extra_config":{"proxy":{"shadow":true,"shadow_timeout":"2s"}}}]}
        ]}"#,
        false,
    )
    .unwrap();
    let backends = &loaded.config.endpoints[0].backends;
    assert_eq!(backends[0].shadow, None);
    assert_eq!(
        backends[1].shadow,
        Some(crate::ShadowBackend {
            timeout: Some(std::time::Duration::from_secs(2))
        })
    );
    let refused = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a","backend":[{"url_pattern":"/a","extra_config":{"proxy":{"shadow":true}}}]}
        ]}"#,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("every backend is a shadow"), "{refused}");
    let sequential = parse_str(
        r#"{"version":3,"host":["h"],"endpoints":[
            {"endpoint":"/a","extra_config":{"proxy":{"sequential":true}},"backend":[{"url_pattern":"/a"},
              {"url_pattern":"/b","extra_config":{"proxy":{"shadow":true}}}]}
        ]}"#,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(sequential.contains("sequential endpoint"), "{sequential}");
}

#[test]
fn http_client_settings_are_read_per_generation() {
    let backend = r#"{"url_pattern":"/a","extra_config":{"backend/http/client":
        {"send_body_on_redirect":true,"no_redirect":true,"client_tls":{}}}}"#;
    let file = |version: u8| {
        format!(
            r#"{{"version":{version},"host":["h"],"endpoints":[{{"endpoint":"/a","backend":[{backend}]}}]}}"#
        )
    };
    let krakend2 = parse_str(&file(3), false).unwrap();
    assert!(krakend2.config.endpoints[0].backends[0].send_body_on_redirect);
    let warnings = warnings_of(&krakend2);
    for key in ["no_redirect", "client_tls"] {
        assert!(
            has(
                &warnings,
                &format!("backend/http/client.{key}: a KrakenD Enterprise setting")
            ),
            "{warnings:?}"
        );
    }
    // KrakenD 1.x has no such namespace: nothing of it is followed.
    let krakend1 = parse_str(&file(2), false).unwrap();
    assert!(!krakend1.config.endpoints[0].backends[0].send_body_on_redirect);
    let warnings = warnings_of(&krakend1);
    assert!(
        has(&warnings, "has no backend/http/client: ignored"),
        "{warnings:?}"
    );
    let wrong = parse_str(&file(3).replace("true,\"no", "\"yes\",\"no"), false).unwrap_err();
    assert!(
        wrong.to_string().contains("send_body_on_redirect"),
        "{wrong}"
    );
}

#[test]
fn unregistered_encodings_fall_back_as_lura_does() {
    let file = |version: u8, top: &str, endpoints: &str| {
        format!(r#"{{"version":{version},"host":["h"],{top}"endpoints":[{endpoints}]}}"#)
    };
    let single = |output: &str, backend: &str| {
        format!(
            r#"{{"endpoint":"/{output}{backend}","output_encoding":"{output}","backend":[{{"url_pattern":"/","encoding":"{backend}"}}]}}"#
        )
    };
    let renders = |version: u8, top: &str, endpoints: &[String]| {
        let loaded = parse_str(&file(version, top, &endpoints.join(",")), false).unwrap();
        let found: Vec<_> = loaded
            .config
            .endpoints
            .iter()
            .map(|e| e.output_encoding)
            .collect();
        (found, warnings_of(&loaded))
    };
    // An unknown render: the single backend's encoding's render, else JSON.
    let (found, warnings) = renders(
        3,
        "",
        &[
            single("fast-json", "string"),
            single("rss", "xml"),
            single("bogus", "safejson"),
            single("yaml", "json"),
            r#"{"endpoint":"/two","output_encoding":"fast-json","backend":[{"url_pattern":"/","encoding":"string"},{"url_pattern":"/b","encoding":"string"}]}"#.to_owned(),
        ],
    );
    assert_eq!(
        found,
        [
            OutputEncoding::String,
            OutputEncoding::Xml,
            OutputEncoding::Json,
            OutputEncoding::Yaml,
            OutputEncoding::Json
        ]
    );
    assert!(
        has(
            &warnings,
            "endpoints[0].output_encoding: KrakenD 2.x registers no \"fast-json\""
        ),
        "{warnings:?}"
    );
    // KrakenD 1.x registers no yaml render; a service-wide name is each
    // endpoint's, resolved with its own backends.
    let (found, warnings) = renders(
        2,
        r#""output_encoding":"yaml","#,
        &[
            single("yaml", "string"),
            r#"{"endpoint":"/d","backend":[{"url_pattern":"/","encoding":"no-op"}]}"#.to_owned(),
        ],
    );
    assert_eq!(found, [OutputEncoding::String, OutputEncoding::NoOp]);
    assert!(
        has(
            &warnings,
            "output_encoding: KrakenD 1.x (version-1 and 2 files; yaml needs \"version\": 3)"
        ),
        "{warnings:?}"
    );
    // Decoders are found by the lower-cased name, and JSON's for others.
    let loaded = parse_str(
        &file(
            3,
            "",
            &[single("json", "SafeJSON"), single("json", "fast-json")].join(","),
        ),
        false,
    )
    .unwrap();
    let encodings: Vec<_> = loaded
        .config
        .endpoints
        .iter()
        .map(|e| e.backends[0].encoding)
        .collect();
    assert_eq!(
        encodings,
        [BackendEncoding::SafeJson, BackendEncoding::Json]
    );
    let warnings = warnings_of(&loaded);
    assert!(
        has(
            &warnings,
            "endpoints[1].backend[0].encoding: KrakenD registers no \"fast-json\" decoder"
        ),
        "{warnings:?}"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn the_backend_transport_keys_read_as_lura_copies_them_into_go_s_transport() {
    let with = |keys: &str| {
        let text = format!(
            r#"{{"version":3,{keys}"endpoints":[{{"endpoint":"/a","backend":[{{"host":["h"],"url_pattern":"/"}}]}}]}}"#
        );
        parse_str(&text, false).map(|loaded| loaded.config.backend_transport)
    };
    assert_eq!(with("").unwrap(), BackendTransport::default());
    assert_eq!(
        with("").unwrap().max_idle_connections_per_host,
        DEFAULT_MAX_IDLE_PER_HOST
    );
    let set = with(
        r#""dialer_timeout":"1s","dialer_keep_alive":"-1s","dialer_fallback_delay":"50ms",
        "disable_keep_alives":true,"max_idle_connections":7,"max_idle_connections_per_host":3,
        "idle_connection_timeout":"10s","response_header_timeout":"500ms",
        "expect_continue_timeout":"1s","#,
    )
    .unwrap();
    assert_eq!(
        set,
        BackendTransport {
            dialer_timeout: Some(Duration::from_secs(1)),
            dialer_keep_alive: DialerSetting::Off,
            dialer_fallback_delay: DialerSetting::Set(Duration::from_millis(50)),
            disable_keep_alives: true,
            max_idle_connections: 7,
            max_idle_connections_per_host: 3,
            idle_connection_timeout: Some(Duration::from_secs(10)),
            response_header_timeout: Some(Duration::from_millis(500)),
            expect_continue_timeout: Some(Duration::from_secs(1)),
        }
    );
    // Zero is Go's "unset": the defaults, 250 idle a host among them.
    let zero = with(
        r#""dialer_timeout":"0s","dialer_keep_alive":"0","max_idle_connections_per_host":0,
        "idle_connection_timeout":"0s","#,
    )
    .unwrap();
    assert_eq!(zero, BackendTransport::default());
    assert_eq!(DialerSetting::Off.or(Duration::from_secs(15)), None);
    assert_eq!(
        DialerSetting::GoDefault.or(Duration::from_secs(15)),
        Some(Duration::from_secs(15))
    );
    // Bad values are named by their key.
    let Err(ConfigError::Invalid { problems }) = with(
        r#""dialer_keep_alive":true,"max_idle_connections":-1,"response_header_timeout":"soon","#,
    ) else {
        panic!("bad transport keys were accepted");
    };
    let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for key in [
        "dialer_keep_alive",
        "max_idle_connections",
        "response_header_timeout",
    ] {
        assert!(has(&problems, key), "{key}: {problems:?}");
    }
}

#[test]
fn the_server_timeouts_read_zero_as_unset_as_go_does() {
    let read = |keys: &str| {
        let text = format!(
            r#"{{"version":2,{keys}"endpoints":[{{"endpoint":"/a","backend":[{{"host":["h"],"url_pattern":"/"}}]}}]}}"#
        );
        parse_str(&text, false).unwrap().config
    };
    let set = read(
        r#""read_timeout":"2s","write_timeout":"3s","idle_timeout":"4s","read_header_timeout":"1s","#,
    );
    assert_eq!(set.read_timeout, Some(Duration::from_secs(2)));
    assert_eq!(set.write_timeout, Some(Duration::from_secs(3)));
    assert_eq!(set.idle_timeout, Some(Duration::from_secs(4)));
    assert_eq!(set.read_header_timeout, Some(Duration::from_secs(1)));
    let zero = read(
        r#""read_timeout":"0s","write_timeout":"0","idle_timeout":"0s","read_header_timeout":"0ms","#,
    );
    assert_eq!(
        (
            zero.read_timeout,
            zero.write_timeout,
            zero.idle_timeout,
            zero.read_header_timeout
        ),
        (None, None, None, None)
    );
}

#[test]
fn max_header_bytes_is_lura_2_s_and_go_s_default_elsewhere() {
    let read = |version: u64, keys: &str| {
        let text = format!(
            r#"{{"version":{version},{keys}"endpoints":[{{"endpoint":"/a","backend":[{{"host":["h"],"url_pattern":"/"}}]}}]}}"#
        );
        parse_str(&text, false).unwrap()
    };
    assert_eq!(
        read(3, "").config.max_header_bytes,
        DEFAULT_MAX_HEADER_BYTES
    );
    assert_eq!(
        read(3, r#""max_header_bytes":8192,"#)
            .config
            .max_header_bytes,
        8192
    );
    assert_eq!(
        read(3, r#""max_header_bytes":0,"#).config.max_header_bytes,
        DEFAULT_MAX_HEADER_BYTES
    );
    let v2 = read(2, r#""max_header_bytes":8192,"#);
    assert_eq!(v2.config.max_header_bytes, DEFAULT_MAX_HEADER_BYTES);
    assert!(
        has(
            &warnings_of(&v2),
            "max_header_bytes: KrakenD 1.x has no such setting"
        ),
        "{:?}",
        warnings_of(&v2)
    );
    let problems = problems(
        r#"{"version":3,"max_header_bytes":"1MB","endpoints":[]}"#,
        false,
    );
    assert!(
        has(&problems, "max_header_bytes: expected a number of bytes"),
        "{problems:?}"
    );
}

#[test]
fn sequential_start_is_checked_and_changes_nothing_without_async_agents() {
    let read = |version: u64, value: &str| {
        parse_str(
            &format!(
                r#"{{"version":{version},"sequential_start":{value},"endpoints":[{{"endpoint":"/a","backend":[{{"host":["h"],"url_pattern":"/"}}]}}]}}"#
            ),
            false,
        )
    };
    assert!(warnings_of(&read(3, "true").unwrap()).is_empty());
    let v2 = warnings_of(&read(2, "true").unwrap());
    assert!(
        has(&v2, "sequential_start: KrakenD 1.x has no such setting"),
        "{v2:?}"
    );
    assert!(read(3, r#""yes""#).is_err());
}
