//! The backend client's metrics as krakend-otel's instrumented transport
//! records them (its `http/client/transport_metrics.go`, without a
//! semantic convention set): per HTTP exchange with a backend (each
//! redirect too) `http.client.request.started.count`,
//! `http.client.request.size`, `http.client.duration`,
//! `http.client.response.size` or `http.client.response.no-content-length`,
//! the failed, canceled and timed-out counts; and, as the answer's body is
//! read, `http.client.response.read.size`, `.size-hist`, `.time`,
//! `.time-hist`.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use opentelemetry::{
    metrics::{BoundCounter, BoundHistogram, Counter, Histogram, Meter},
    KeyValue,
};

use super::{
    bound::{Bindings, Held},
    metrics::{installed, Named},
};
use crate::upstream::connection_timings::ConnectionTimings;

/// The instruments, made once with the metrics. Those that a semantic
/// convention leaves out are `None`.
pub struct ClientInstruments {
    started: Option<Counter<u64>>,
    failed: Option<Counter<u64>>,
    canceled: Option<Counter<u64>>,
    timed_out: Option<Counter<u64>>,
    /// krakend-otel's own sum of request bodies.
    request_size: Option<Counter<u64>>,
    /// OpenTelemetry 1.27's histogram of them.
    request_body_size: Option<Histogram<u64>>,
    duration: Histogram<f64>,
    response_size: Histogram<u64>,
    no_length: Option<Counter<u64>>,
    read_size: Counter<u64>,
    read_size_hist: Histogram<u64>,
    read_time: Counter<f64>,
    read_time_hist: Histogram<f64>,
    get_conn: Histogram<f64>,
    dns: Histogram<f64>,
    tls: Histogram<f64>,
}

impl ClientInstruments {
    /// krakend-otel's instruments, under its names or (`semconv_1_27`)
    /// those of its 1.27 filler, which keeps its own counters only with
    /// `detailed_connection`.
    pub fn new(meter: &Meter, semconv_1_27: bool, detailed: bool) -> Self {
        let own = !semconv_1_27 || detailed;
        let counter = |name: &'static str| own.then(|| Named::new(name).counter(meter));
        let (duration, response_size, no_length, connection) = if semconv_1_27 {
            (
                Named::new("http.client.request.duration")
                    .unit("s")
                    .described("Duration of HTTP client requests."),
                Named::new("http.client.response.body.size")
                    .unit("By")
                    .described("Size of HTTP client response bodies."),
                Named::new("http.client.response.no-content-length")
                    .unit("By")
                    .described(
                        "Client received responses that do not have 'Content-Length' value set",
                    ),
                [
                    Named::new("http.client.request.get-conn.duration")
                        .unit("s")
                        .described("Time spent acquiring a client connection"),
                    Named::new("http.client.request.dns.duration")
                        .unit("s")
                        .described("Time spent resolving the DNS name"),
                    Named::new("http.client.request.tls.duration")
                        .unit("s")
                        .described("Time spent on TLS negotiation and connection"),
                ],
            )
        } else {
            (
                Named::new("http.client.duration"),
                Named::new("http.client.response.size"),
                Named::new("http.client.response.no-content-length"),
                [
                    Named::new("http.client.request.get-conn.duration"),
                    Named::new("http.client.request.dns.duration"),
                    Named::new("http.client.request.tls.duration"),
                ],
            )
        };
        let [get_conn, dns, tls] = connection.map(|named| named.seconds(meter));
        Self {
            started: counter("http.client.request.started.count"),
            failed: counter("http.client.request.failed.count"),
            canceled: counter("http.client.request.canceled.count"),
            timed_out: counter("http.client.request.timedout.count"),
            request_size: (!semconv_1_27)
                .then(|| Named::new("http.client.request.size").counter(meter)),
            request_body_size: semconv_1_27.then(|| {
                Named::new("http.client.request.body.size")
                    .unit("By")
                    .described("Size of HTTP client request bodies.")
                    .bytes(meter)
            }),
            duration: duration.seconds(meter),
            response_size: response_size.bytes(meter),
            no_length: own.then(|| no_length.counter(meter)),
            read_size: Named::new("http.client.response.read.size")
                .unit("b")
                .counter(meter),
            read_size_hist: Named::new("http.client.response.read.size-hist")
                .unit("b")
                .bytes(meter),
            read_time: meter
                .f64_counter("http.client.response.read.time")
                .with_unit("s")
                .build(),
            read_time_hist: Named::new("http.client.response.read.time-hist")
                .unit("s")
                .seconds(meter),
            get_conn,
            dns,
            tls,
        }
    }
}

/// One backend's client metrics, as configured once, and its instruments
/// bound as they are first used.
#[derive(Debug)]
pub struct ClientMeter {
    /// The backend stage's fixed attributes (see
    /// [`super::metrics::backend_attributes`]).
    fixed: Vec<KeyValue>,
    /// The same with `clientname` and without the configured method: the
    /// exchanges' own.
    exchange: Vec<KeyValue>,
    /// `round_trip`: the exchange's metrics.
    round_trip: bool,
    /// `read_payload`: the body's.
    read_payload: bool,
    /// `detailed_connection`: the exchange's connection durations.
    detailed: bool,
    /// The endpoint's timeout: an exchange dropped past it timed out, one
    /// dropped before was canceled (a faster twin won, the client left).
    timeout: Duration,
    /// The exchanges' instruments, by method, host and port, then status.
    peers: Bindings<PeerKey, Peer>,
    /// The body's instruments, read whole (`false`) or failed (`true`).
    reads: Bindings<bool, BoundRead>,
}

impl ClientMeter {
    /// `fixed` are the backend's metric attributes; `client` its normalised
    /// URL pattern (krakend-otel's client name).
    pub fn new(
        fixed: Vec<KeyValue>,
        client: &str,
        round_trip: bool,
        read_payload: bool,
        detailed: bool,
        timeout: Duration,
    ) -> Self {
        // The exchange's own method is added to each measurement.
        let mut exchange: Vec<KeyValue> = fixed
            .iter()
            .filter(|kv| kv.key.as_str() != "http.request.method")
            .cloned()
            .collect();
        exchange.push(super::metrics::shared("clientname", client));
        Self {
            fixed,
            exchange,
            round_trip,
            read_payload,
            detailed,
            timeout,
            // A backend's hosts, each with the methods it is called with.
            peers: Bindings::new(8),
            reads: Bindings::new(2),
        }
    }

    /// Starts measuring one exchange; `None` when round trips are not
    /// measured.
    pub fn exchange(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        body_size: usize,
    ) -> Option<Exchange<'_>> {
        if !self.round_trip {
            return None;
        }
        let instruments = installed()?.client()?;
        let host = uri.host().unwrap_or("");
        // krakend-otel's `requestServerAndPort` keeps 80 when the URL
        // names a port and writes 0 when it does not (its parse check is
        // inverted); dashboards see these values, so Sepia's match.
        let port = if uri.port_u16().is_some() { 80 } else { 0 };
        let peer = self.peers.get(
            |k| k.method == method && k.host == host && k.port == port,
            || {
                let mut attributes = Vec::with_capacity(self.exchange.len() + 4);
                attributes.extend(self.exchange.iter().cloned());
                attributes.push(KeyValue::new(
                    "http.request.method",
                    method.as_str().to_owned(),
                ));
                attributes.push(KeyValue::new("server.address", host.to_owned()));
                attributes.push(KeyValue::new("server.port", port));
                let key = PeerKey {
                    method: method.clone(),
                    host: host.to_owned(),
                    port,
                };
                let peer = Peer {
                    attributes,
                    statuses: Bindings::new(8),
                };
                (key, peer)
            },
        );
        Some(Exchange {
            instruments,
            detailed: self.detailed,
            timeout: self.timeout,
            head: *method == http::Method::HEAD,
            peer,
            body_size: u64::try_from(body_size).unwrap_or(u64::MAX),
            started: Instant::now(),
            done: false,
        })
    }

    /// Starts measuring the reading of an answer's body; `None` when
    /// payloads are not measured.
    pub fn read(&self) -> Option<Read<'_>> {
        if !self.read_payload {
            return None;
        }
        Some(Read {
            meter: self,
            instruments: installed()?.client()?,
            started: Instant::now(),
        })
    }
}

/// The attributes of an exchange that vary but its status.
#[derive(Debug)]
struct PeerKey {
    method: http::Method,
    host: String,
    port: i64,
}

/// The attributes of one method, host and port, and the instruments bound
/// to them for each status.
struct Peer {
    attributes: Vec<KeyValue>,
    statuses: Bindings<u16, BoundExchange>,
}

/// The instruments of the exchanges that ended with one status. Those
/// that not every exchange records are bound when first recorded, so that
/// no series KrakenD would not export appears.
struct BoundExchange {
    attributes: Vec<KeyValue>,
    started: Option<BoundCounter<u64>>,
    request_size: Option<BoundCounter<u64>>,
    request_body_size: Option<BoundHistogram<u64>>,
    duration: BoundHistogram<f64>,
    response_size: OnceLock<BoundHistogram<u64>>,
    no_length: OnceLock<BoundCounter<u64>>,
    /// get-conn, DNS and TLS, with `detailed_connection`: every exchange
    /// records them.
    connection: Option<[BoundHistogram<f64>; 3]>,
}

impl BoundExchange {
    fn new(instruments: &ClientInstruments, detailed: bool, attributes: Vec<KeyValue>) -> Self {
        Self {
            connection: detailed.then(|| {
                [&instruments.get_conn, &instruments.dns, &instruments.tls]
                    .map(|histogram| histogram.bind(&attributes))
            }),
            started: instruments.started.as_ref().map(|c| c.bind(&attributes)),
            request_size: instruments
                .request_size
                .as_ref()
                .map(|c| c.bind(&attributes)),
            request_body_size: instruments
                .request_body_size
                .as_ref()
                .map(|h| h.bind(&attributes)),
            duration: instruments.duration.bind(&attributes),
            response_size: OnceLock::new(),
            no_length: OnceLock::new(),
            attributes,
        }
    }
}

/// How an exchange ended.
pub enum ExchangeEnd {
    /// The backend answered: its status and `Content-Length`.
    Answered { status: u16, length: Option<u64> },
    /// No answer came (no connection, a broken one).
    Failed,
}

/// One exchange being measured; measured as canceled or timed out when
/// dropped before it ends.
pub struct Exchange<'a> {
    instruments: &'static ClientInstruments,
    detailed: bool,
    timeout: Duration,
    head: bool,
    peer: Held<'a, Peer>,
    body_size: u64,
    started: Instant,
    done: bool,
}

impl Exchange<'_> {
    /// Whether its connection's durations are measured.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// Records how it ended, and what its connection took.
    pub fn finish(mut self, end: ExchangeEnd, connection: ConnectionTimings) {
        self.done = true;
        self.record(Some(end), connection);
    }

    fn record(&mut self, end: Option<ExchangeEnd>, connection: ConnectionTimings) {
        let instruments = self.instruments;
        let latency = self.started.elapsed();
        let status = match &end {
            Some(ExchangeEnd::Answered { status, .. }) => *status,
            _ => 0,
        };
        let peer = &*self.peer;
        let bound = peer.statuses.get(
            |k| *k == status,
            || {
                let mut attributes = Vec::with_capacity(peer.attributes.len() + 1);
                attributes.extend(peer.attributes.iter().cloned());
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                (
                    status,
                    BoundExchange::new(instruments, self.detailed, attributes),
                )
            },
        );
        let attributes = &bound.attributes;
        if let Some(started) = &bound.started {
            started.add(1);
        }
        if let Some(size) = &bound.request_size {
            size.add(self.body_size);
        }
        if let Some(size) = &bound.request_body_size {
            size.record(self.body_size);
        }
        // Rare: recorded unbound.
        let count = |counter: &Option<Counter<u64>>| {
            if let Some(counter) = counter {
                counter.add(1, attributes);
            }
        };
        match &end {
            None if latency >= self.timeout => {
                count(&instruments.timed_out);
                count(&instruments.failed);
            }
            None => count(&instruments.canceled),
            Some(ExchangeEnd::Failed) => count(&instruments.failed),
            Some(ExchangeEnd::Answered { .. }) => {}
        }
        bound.duration.record(latency.as_secs_f64());
        if let Some([get_conn, dns, tls]) = &bound.connection {
            get_conn.record(connection.get_conn.as_secs_f64());
            dns.record(connection.dns.as_secs_f64());
            tls.record(connection.tls.as_secs_f64());
        }
        if let Some(ExchangeEnd::Answered { length, .. }) = end {
            if !self.head {
                match length {
                    Some(length) => bound
                        .response_size
                        .get_or_init(|| instruments.response_size.bind(attributes))
                        .record(length),
                    None => {
                        if let Some(no_length) = &instruments.no_length {
                            bound
                                .no_length
                                .get_or_init(|| no_length.bind(attributes))
                                .add(1);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Dropped mid-way: what its connection took is not known.
            self.record(None, ConnectionTimings::default());
        }
    }
}

/// The body instruments of one outcome, all bound at once: each reading
/// records them all.
struct BoundRead {
    size: BoundCounter<u64>,
    size_hist: BoundHistogram<u64>,
    time: BoundCounter<f64>,
    time_hist: BoundHistogram<f64>,
}

/// The reading of one body being measured.
pub struct Read<'a> {
    meter: &'a ClientMeter,
    instruments: &'static ClientInstruments,
    started: Instant,
}

impl Read<'_> {
    /// The body was read whole, `size` bytes of it, or (`failed`) its
    /// reading failed; krakend-otel then adds `error=true` (its `.errors`
    /// counter is made but never counted, so it is not exported).
    pub fn finish(self, size: u64, failed: bool) {
        let seconds = self.started.elapsed().as_secs_f64();
        let instruments = self.instruments;
        let bound = self.meter.reads.get(
            |k| *k == failed,
            || {
                let mut attributes = self.meter.fixed.clone();
                if failed {
                    attributes.push(KeyValue::new("error", "true"));
                }
                let bound = BoundRead {
                    size: instruments.read_size.bind(&attributes),
                    size_hist: instruments.read_size_hist.bind(&attributes),
                    time: instruments.read_time.bind(&attributes),
                    time_hist: instruments.read_time_hist.bind(&attributes),
                };
                (failed, bound)
            },
        );
        bound.size.add(size);
        bound.size_hist.record(size);
        bound.time.add(seconds);
        bound.time_hist.record(seconds);
    }
}
