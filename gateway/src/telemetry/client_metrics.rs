//! The backend client's metrics as krakend-otel's instrumented transport
//! records them (its `http/client/transport_metrics.go`, without a
//! semantic convention set): per HTTP exchange with a backend (each
//! redirect too) `http.client.request.started.count`,
//! `http.client.request.size`, `http.client.duration`,
//! `http.client.response.size` or `http.client.response.no-content-length`,
//! the failed, canceled and timed-out counts; and, as the answer's body is
//! read, `http.client.response.read.size`, `.size-hist`, `.time`,
//! `.time-hist`.

use std::time::{Duration, Instant};

use opentelemetry::{
    metrics::{Counter, Histogram, Meter},
    KeyValue,
};

use super::metrics::{installed, SIZE_BUCKETS, TIME_BUCKETS};

/// The instruments, made once with the metrics.
pub struct ClientInstruments {
    started: Counter<u64>,
    failed: Counter<u64>,
    canceled: Counter<u64>,
    timed_out: Counter<u64>,
    request_size: Counter<u64>,
    duration: Histogram<f64>,
    response_size: Histogram<u64>,
    no_length: Counter<u64>,
    read_size: Counter<u64>,
    read_size_hist: Histogram<u64>,
    read_time: Counter<f64>,
    read_time_hist: Histogram<f64>,
}

impl ClientInstruments {
    /// krakend-otel's instruments, under its names.
    pub fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str| meter.u64_counter(name).build();
        let seconds = |name: &'static str| {
            meter
                .f64_histogram(name)
                .with_boundaries(TIME_BUCKETS.to_vec())
                .build()
        };
        let bytes = |name: &'static str| {
            meter
                .u64_histogram(name)
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build()
        };
        Self {
            started: counter("http.client.request.started.count"),
            failed: counter("http.client.request.failed.count"),
            canceled: counter("http.client.request.canceled.count"),
            timed_out: counter("http.client.request.timedout.count"),
            request_size: counter("http.client.request.size"),
            duration: seconds("http.client.duration"),
            response_size: bytes("http.client.response.size"),
            no_length: counter("http.client.response.no-content-length"),
            read_size: meter
                .u64_counter("http.client.response.read.size")
                .with_unit("b")
                .build(),
            read_size_hist: meter
                .u64_histogram("http.client.response.read.size-hist")
                .with_unit("b")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            read_time: meter
                .f64_counter("http.client.response.read.time")
                .with_unit("s")
                .build(),
            read_time_hist: meter
                .f64_histogram("http.client.response.read.time-hist")
                .with_unit("s")
                .with_boundaries(TIME_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// One backend's client metrics, as configured once.
#[derive(Debug, Clone)]
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
    /// The endpoint's timeout: an exchange dropped past it timed out, one
    /// dropped before was canceled (a faster twin won, the client left).
    timeout: Duration,
}

impl ClientMeter {
    /// `fixed` are the backend's metric attributes; `client` its normalised
    /// URL pattern (krakend-otel's client name).
    pub fn new(
        fixed: Vec<KeyValue>,
        client: &str,
        round_trip: bool,
        read_payload: bool,
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
            timeout,
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
        installed()?.client()?;
        Some(Exchange {
            meter: self,
            method: method.clone(),
            host: uri.host().unwrap_or("").to_owned(),
            // krakend-otel's `requestServerAndPort` keeps 80 when the URL
            // names a port and writes 0 when it does not (its parse check
            // is inverted); dashboards see these values, so Sepia's match.
            port: if uri.port_u16().is_some() { 80 } else { 0 },
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
        installed()?.client()?;
        Some(Read {
            meter: self,
            started: Instant::now(),
        })
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
    meter: &'a ClientMeter,
    method: http::Method,
    host: String,
    port: i64,
    body_size: u64,
    started: Instant,
    done: bool,
}

impl Exchange<'_> {
    /// Records how it ended.
    pub fn finish(mut self, end: ExchangeEnd) {
        self.done = true;
        self.record(Some(end));
    }

    fn record(&mut self, end: Option<ExchangeEnd>) {
        let Some(instruments) = installed().and_then(|m| m.client()) else {
            return;
        };
        let latency = self.started.elapsed();
        let status = match &end {
            Some(ExchangeEnd::Answered { status, .. }) => i64::from(*status),
            _ => 0,
        };
        let mut attributes = Vec::with_capacity(self.meter.exchange.len() + 4);
        attributes.extend(self.meter.exchange.iter().cloned());
        attributes.push(KeyValue::new(
            "http.request.method",
            self.method.as_str().to_owned(),
        ));
        attributes.push(KeyValue::new(
            "server.address",
            std::mem::take(&mut self.host),
        ));
        attributes.push(KeyValue::new("server.port", self.port));
        attributes.push(KeyValue::new("http.response.status_code", status));
        instruments.started.add(1, &attributes);
        instruments.request_size.add(self.body_size, &attributes);
        match &end {
            None if latency >= self.meter.timeout => {
                instruments.timed_out.add(1, &attributes);
                instruments.failed.add(1, &attributes);
            }
            None => instruments.canceled.add(1, &attributes),
            Some(ExchangeEnd::Failed) => instruments.failed.add(1, &attributes),
            Some(ExchangeEnd::Answered { .. }) => {}
        }
        instruments
            .duration
            .record(latency.as_secs_f64(), &attributes);
        if let Some(ExchangeEnd::Answered { length, .. }) = end {
            if self.method != http::Method::HEAD {
                match length {
                    Some(length) => instruments.response_size.record(length, &attributes),
                    None => instruments.no_length.add(1, &attributes),
                }
            }
        }
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record(None);
        }
    }
}

/// The reading of one body being measured.
pub struct Read<'a> {
    meter: &'a ClientMeter,
    started: Instant,
}

impl Read<'_> {
    /// The body was read whole, `size` bytes of it, or (`failed`) its
    /// reading failed; krakend-otel then adds `error=true` (its `.errors`
    /// counter is made but never counted, so it is not exported).
    pub fn finish(self, size: u64, failed: bool) {
        let Some(instruments) = installed().and_then(|m| m.client()) else {
            return;
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let mut with_error;
        let attributes = if failed {
            with_error = self.meter.fixed.clone();
            with_error.push(KeyValue::new("error", "true"));
            &with_error
        } else {
            &self.meter.fixed
        };
        instruments.read_size.add(size, attributes);
        instruments.read_size_hist.record(size, attributes);
        instruments.read_time.add(seconds, attributes);
        instruments.read_time_hist.record(seconds, attributes);
    }
}
