//! `"sd": "dns"`: a backend's hosts found by a DNS SRV lookup of its first
//! `host`, as lura's `dnssrv` subscriber finds them: looked up when the
//! gateway is built and again every `dns_cache_ttl` (30 s), a failed lookup
//! keeping the hosts found before, and each record a URL
//! `scheme://target:port`, repeated by its weight.
//!
//! By generation, from lura's source:
//! - version 3 (lura 2): only the records of the lowest priority, their
//!   weights scaled to a sum of at most 100 and divided by their common
//!   divisor (a weight of 0 gives no turn), ordered by priority, weight
//!   (heaviest first), target and port;
//! - version 1/2 (lura 1.4): every record in priority order, each
//!   weight + 1 turns less one, so a weight of 0 wraps to 65 536 turns
//!   (Go's `uint16(0 - 1)`); kept as counts, not as copies.
//!
//! The lookups go to the system's resolvers (`/etc/resolv.conf`), or to
//! the one `SEPIA_DNS_SERVER=ip:port` names (containers, tests).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use arc_swap::ArcSwap;
use hickory_resolver::{
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::{runtime::TokioRuntimeProvider, NetError},
    proto::rr::RData,
    TokioResolver,
};
use sepia_config::{Config, DnsSrv};

/// The variable that names the DNS server to ask instead of the system's.
pub const DNS_SERVER_VARIABLE: &str = "SEPIA_DNS_SERVER";

/// Why service discovery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The system's resolver configuration is unreadable.
    #[error("\"sd\": \"dns\" needs the system's DNS configuration (/etc/resolv.conf), which cannot be read: {source}; or set {DNS_SERVER_VARIABLE}=ip:port")]
    SystemConf {
        /// The cause.
        #[source]
        source: NetError,
    },
    /// `SEPIA_DNS_SERVER` is not an address.
    #[error("{DNS_SERVER_VARIABLE}={value:?} is not an ip:port address such as 127.0.0.1:53")]
    Server {
        /// What it holds.
        value: String,
    },
    /// The resolver cannot be built.
    #[error("cannot build the DNS resolver for \"sd\": \"dns\": {source}")]
    Build {
        /// The cause.
        #[source]
        source: NetError,
    },
}

/// The hosts of one SRV name: URLs with their turns.
#[derive(Debug)]
pub struct SrvHosts {
    name: String,
    scheme: String,
    krakend2: bool,
    current: ArcSwap<Turns>,
}

/// URLs and the running sum of their turns.
#[derive(Debug, Default, PartialEq, Eq)]
struct Turns {
    urls: Vec<String>,
    /// `ends[i]`: the turns of `urls[..=i]`.
    ends: Vec<u64>,
}

impl Turns {
    fn of(weighted: Vec<(String, u64)>) -> Self {
        let mut turns = Turns::default();
        let mut total = 0u64;
        for (url, count) in weighted.into_iter().filter(|(_, c)| *c > 0) {
            total += count;
            turns.urls.push(url);
            turns.ends.push(total);
        }
        turns
    }

    /// The URL of turn `n`, round the list.
    fn at(&self, n: usize) -> Option<&str> {
        let total = *self.ends.last()?;
        let turn = n as u64 % total;
        let i = self.ends.partition_point(|end| *end <= turn);
        self.urls.get(i).map(String::as_str)
    }
}

/// One SRV record, as the lookup gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    priority: u16,
    weight: u16,
    port: u16,
    /// As DNS writes it, with its final dot.
    target: String,
}

impl SrvHosts {
    fn new(srv: &DnsSrv, krakend2: bool) -> Self {
        Self {
            name: srv.name.clone(),
            scheme: srv.scheme.clone(),
            krakend2,
            current: ArcSwap::from_pointee(Turns::default()),
        }
    }

    /// The name looked up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends the URL of turn `n` to `out`; false when the lookup found
    /// no host (lura's "no hosts available").
    pub fn push_host(&self, n: usize, out: &mut String) -> bool {
        match self.current.load().at(n) {
            Some(url) => {
                out.push_str(url);
                true
            }
            None => false,
        }
    }

    /// The URLs and turns the records give, by the file's generation.
    fn turns(&self, mut records: Vec<Record>) -> Turns {
        // The target's final dot goes: Go finds `name.` in /etc/hosts too,
        // the system's resolver behind Rust's connect does not.
        let url = |r: &Record| {
            let host = r.target.strip_suffix('.').unwrap_or(&r.target);
            format!("{}://{}", self.scheme, join_host_port(host, r.port))
        };
        if !self.krakend2 {
            // Go's resolver orders by priority (shuffling by weight within).
            records.sort_by_key(|r| r.priority);
            return Turns::of(
                records
                    .iter()
                    .map(|r| (url(r), u64::from(r.weight.wrapping_sub(1)) + 1))
                    .collect(),
            );
        }
        records.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.weight.cmp(&a.weight))
                .then_with(|| a.target.cmp(&b.target))
                .then(a.port.cmp(&b.port))
        });
        let Some(lowest) = records.first().map(|r| r.priority) else {
            return Turns::default();
        };
        records.retain(|r| r.priority == lowest);
        let weights = compact(&records.iter().map(|r| r.weight).collect::<Vec<_>>());
        Turns::of(
            records
                .iter()
                .zip(weights)
                .map(|(r, w)| (url(r), u64::from(w)))
                .collect(),
        )
    }

    /// Looks the name up and keeps what it found; a failure keeps the
    /// hosts found before, as lura does.
    async fn update(&self, resolver: &TokioResolver) {
        match lookup(resolver, &self.name).await {
            Ok(records) => {
                let turns = self.turns(records);
                if **self.current.load() != turns {
                    tracing::info!(name = %self.name, hosts = ?turns.urls, "DNS SRV hosts");
                    self.current.store(Arc::new(turns));
                }
            }
            Err(error) => {
                tracing::warn!(name = %self.name, %error, "DNS SRV lookup failed: the hosts found before are kept");
            }
        }
    }
}

async fn lookup(resolver: &TokioResolver, name: &str) -> Result<Vec<Record>, NetError> {
    let found = resolver.srv_lookup(name).await?;
    Ok(found
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(Record {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: srv.target.to_string(),
            }),
            _ => None,
        })
        .collect())
}

/// Go's `net.JoinHostPort`: an IPv6 literal in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// lura 2's weights: scaled to a sum of at most 100 (or the record count,
/// when larger), then divided by their greatest common divisor.
fn compact(weights: &[u16]) -> Vec<u16> {
    let scale = weights.len().max(100) as u64;
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    let scaled: Vec<u16> = if sum <= scale {
        weights.to_vec()
    } else {
        weights
            .iter()
            .map(|w| (u64::from(*w) * scale / sum) as u16)
            .collect()
    };
    let divisor = scaled.iter().fold(0u16, |a, b| gcd(a, *b));
    if divisor < 2 {
        return scaled;
    }
    scaled.iter().map(|w| w / divisor).collect()
}

fn gcd(mut a: u16, mut b: u16) -> u16 {
    while b > 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The discovered hosts of a configuration's backends, by JSON path.
#[derive(Debug, Default)]
pub struct ServiceDiscovery {
    by_backend: HashMap<String, Arc<SrvHosts>>,
}

impl ServiceDiscovery {
    /// Starts discovery for every `"sd": "dns"` backend of `config`: each
    /// name looked up once now and again every `dns_cache_ttl`, for as long
    /// as a gateway holds it. With `look_up` false (`sepia check`) nothing
    /// is asked and the hosts stay empty.
    pub async fn start(config: &Config, look_up: bool) -> Result<Self, DiscoveryError> {
        let backends: Vec<(&str, &DnsSrv)> = config
            .endpoints
            .iter()
            .flat_map(|e| &e.backends)
            .filter_map(|b| b.dns_srv.as_ref().map(|d| (b.json_path.as_str(), d)))
            .collect();
        if backends.is_empty() {
            return Ok(Self::default());
        }
        let krakend2 = sepia_plugin_api::is_krakend2(config.version);
        let mut by_backend = HashMap::new();
        // One SrvHosts a name and scheme: backends sharing them share it.
        let mut by_name: HashMap<&DnsSrv, Arc<SrvHosts>> = HashMap::new();
        for (path, srv) in &backends {
            let hosts = by_name
                .entry(srv)
                .or_insert_with(|| Arc::new(SrvHosts::new(srv, krakend2)));
            by_backend.insert((*path).to_owned(), hosts.clone());
        }
        if look_up {
            let resolver = resolver()?;
            for hosts in by_name.values() {
                hosts.update(&resolver).await;
                tokio::spawn(refresh(
                    Arc::downgrade(hosts),
                    resolver.clone(),
                    config.dns_cache_ttl,
                ));
            }
        }
        Ok(Self { by_backend })
    }

    /// The hosts of the backend at `json_path`, when it uses DNS SRV.
    pub fn hosts_of(&self, json_path: &str) -> Option<Arc<SrvHosts>> {
        self.by_backend.get(json_path).cloned()
    }
}

/// Looks the name up every `ttl` until no gateway holds its hosts (a
/// reload dropped it).
async fn refresh(hosts: Weak<SrvHosts>, resolver: TokioResolver, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl).await;
        let Some(hosts) = hosts.upgrade() else {
            return;
        };
        hosts.update(&resolver).await;
    }
}

/// The system's resolver, or the server `SEPIA_DNS_SERVER` names; no cache,
/// since lura asks again at every refresh.
fn resolver() -> Result<TokioResolver, DiscoveryError> {
    let mut builder = match std::env::var(DNS_SERVER_VARIABLE) {
        Ok(value) => {
            let address: SocketAddr = value.parse().map_err(|_| DiscoveryError::Server {
                value: value.clone(),
            })?;
            let mut udp = ConnectionConfig::udp();
            udp.port = address.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = address.port();
            let server = NameServerConfig::new(address.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        Err(_) => TokioResolver::builder_tokio()
            .map_err(|source| DiscoveryError::SystemConf { source })?,
    };
    builder.options_mut().cache_size = 0;
    builder
        .build()
        .map_err(|source| DiscoveryError::Build { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(priority: u16, weight: u16, target: &str, port: u16) -> Record {
        Record {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn hosts(krakend2: bool) -> SrvHosts {
        SrvHosts::new(
            &DnsSrv {
                name: "_api._tcp.example.".into(),
                scheme: "http".into(),
            },
            krakend2,
        )
    }

    fn round(turns: &Turns) -> Vec<&str> {
        let total = turns.ends.last().copied().unwrap_or(0) as usize;
        (0..total).filter_map(|n| turns.at(n)).collect()
    }

    #[test]
    fn lura_2_keeps_the_lowest_priority_and_compacts_weights() {
        let turns = hosts(true).turns(vec![
            record(1, 10, "b.example.", 8080),
            record(0, 20, "a.example.", 80),
            record(0, 40, "c.example.", 80),
            record(0, 0, "z.example.", 80),
        ]);
        // 40 and 20 have the divisor 20: two turns and one.
        assert_eq!(
            round(&turns),
            [
                "http://c.example:80",
                "http://c.example:80",
                "http://a.example:80"
            ]
        );
        assert_eq!(compact(&[300, 100]), [3, 1]);
        assert_eq!(compact(&[1, 2, 3]), [1, 2, 3]);
        assert_eq!(compact(&[0, 0]), [0, 0]);
    }

    #[test]
    fn lura_1_repeats_each_record_by_its_weight_and_wraps_zero() {
        let turns = hosts(false).turns(vec![
            record(0, 2, "a.example.", 80),
            record(0, 0, "b.example.", 81),
            record(1, 1, "::1", 82),
        ]);
        assert_eq!(
            turns.urls,
            [
                "http://a.example:80",
                "http://b.example:81",
                "http://[::1]:82"
            ]
        );
        assert_eq!(turns.ends, [2, 2 + 65_536, 2 + 65_536 + 1]);
        assert_eq!(turns.at(1), Some("http://a.example:80"));
        assert_eq!(turns.at(2), Some("http://b.example:81"));
        assert_eq!(turns.at(65_538), Some("http://[::1]:82"));
    }

    #[test]
    fn no_records_is_no_host() {
        let hosts = hosts(true);
        let mut url = String::new();
        assert!(!hosts.push_host(0, &mut url));
        hosts
            .current
            .store(Arc::new(hosts.turns(vec![record(0, 1, "a.", 9)])));
        assert!(hosts.push_host(7, &mut url));
        assert_eq!(url, "http://a:9");
    }
}
