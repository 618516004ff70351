//! `"sd": "dns"`: backends found by DNS SRV lookups against a DNS server on
//! loopback (`SEPIA_DNS_SERVER`), looked up again every `dns_cache_ttl`.

use std::time::Duration;

use sepia_e2e::{dns::TestDns, get, Reply, Sepia, TestBackend};
use serde_json::{json, Value};

const NAME: &str = "_api._tcp.sepia.test.";

fn config(name: &str, version: u64) -> Value {
    json!({"version": version, "dns_cache_ttl": "1s",
        "extra_config": {"router": {"return_error_msg": true}},
        "endpoints": [{"endpoint": "/who", "backend": [{
            "host": [name], "sd": "dns", "disable_host_sanitize": true,
            "url_pattern": "/", "encoding": "string"}]}]})
}

async fn who(sepia: &Sepia, n: usize) -> Vec<String> {
    let mut answers = Vec::new();
    for _ in 0..n {
        let answer = get(&sepia.url("/who")).await;
        answers.push(String::from_utf8_lossy(&answer.body).into_owned());
    }
    answers
}

fn count(answers: &[String], who: &str) -> usize {
    answers.iter().filter(|a| a.contains(who)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn backends_are_found_by_srv_lookups_and_followed_as_they_change() {
    let dns = TestDns::start().await;
    let one = TestBackend::always(Reply::text(200, "one")).await;
    let two = TestBackend::always(Reply::text(200, "two")).await;
    let (p1, p2) = (one.addr.port(), two.addr.port());
    // lura 2: the lowest priority only; weights 2 and 1.
    dns.set(
        NAME,
        &[
            (0, 2, p1, "localhost."),
            (0, 1, p2, "localhost."),
            (5, 9, 1, "localhost."),
        ],
    );
    let server = dns.addr.to_string();
    let sepia = Sepia::start_with(config(NAME, 3), &[], &[("SEPIA_DNS_SERVER", &server)]).await;
    let answers = who(&sepia, 6).await;
    assert_eq!(count(&answers, "one"), 4, "{answers:?}");
    assert_eq!(count(&answers, "two"), 2, "{answers:?}");

    // The records change: within the TTL the gateway follows them.
    dns.set(NAME, &[(0, 1, p2, "localhost.")]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let answers = who(&sepia, 4).await;
    assert_eq!(count(&answers, "two"), 4, "{answers:?}");

    // No records any more: Go's lookup fails on an empty answer, and a
    // failed lookup keeps the hosts found before.
    dns.set(NAME, &[]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let answers = who(&sepia, 2).await;
    assert_eq!(count(&answers, "two"), 2, "{answers:?}");
    assert!(sepia.logs().contains("DNS SRV hosts"), "{}", sepia.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn version_2_weighs_every_priority_as_krakend_1() {
    let dns = TestDns::start().await;
    let one = TestBackend::always(Reply::text(200, "one")).await;
    let two = TestBackend::always(Reply::text(200, "two")).await;
    // lura 1.4: every priority, each record weight times.
    dns.set(
        NAME,
        &[
            (0, 1, one.addr.port(), "localhost."),
            (5, 3, two.addr.port(), "localhost."),
        ],
    );
    let server = dns.addr.to_string();
    let sepia = Sepia::start_with(config(NAME, 2), &[], &[("SEPIA_DNS_SERVER", &server)]).await;
    let answers = who(&sepia, 8).await;
    assert_eq!(count(&answers, "one"), 2, "{answers:?}");
    assert_eq!(count(&answers, "two"), 6, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_dns_server_in_version_3_keeps_the_hosts_found_before() {
    let dns = TestDns::start().await;
    let one = TestBackend::always(Reply::text(200, "one")).await;
    dns.set(NAME, &[(0, 1, one.addr.port(), "localhost.")]);
    let server = dns.addr.to_string();
    let sepia = Sepia::start_with(config(NAME, 3), &[], &[("SEPIA_DNS_SERVER", &server)]).await;
    assert_eq!(count(&who(&sepia, 2).await, "one"), 2);
    dns.fail(true);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(count(&who(&sepia, 2).await, "one"), 2);
    assert!(
        sepia.logs().contains("DNS SRV lookup failed"),
        "{}",
        sepia.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_never_found_fails_its_backend_as_lura_does() {
    let dns = TestDns::start().await;
    let server = dns.addr.to_string();
    let sepia = Sepia::start_with(
        config("_none._tcp.sepia.test.", 3),
        &[],
        &[("SEPIA_DNS_SERVER", &server)],
    )
    .await;
    let answer = get(&sepia.url("/who")).await;
    assert_eq!(answer.status.as_u16(), 500);
    assert_eq!(&answer.body[..], b"no hosts available");
}
