//! What `GET /metrics` counts, in the shapes the request path can afford: a table of per-endpoint counters and
//! latency histograms made once for the fixed set of methods, routes and statuses (an index picks a line, no label
//! is built per request), and [`Histogram`], fixed buckets of atomics. Recording is a few relaxed atomic additions:
//! no lock, no allocation. The text exposition is prometheus-client's (`server.rs` puts the families together at
//! scrape time); nothing here imports the rest of the crate, so the store can keep its own histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Bounds of the latency histograms, in seconds: a cached read takes tens of microseconds, argon2 tens of
/// milliseconds, a write waits for an fsync.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bounds of the group commit's batch sizes (the writer takes at most 512 calls at once).
pub const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A histogram of fixed buckets, each an atomic count. Values are whole units (microseconds for durations, see
/// [`Histogram::time`]); `scale` turns them into the exposed unit (seconds).
#[derive(Debug)]
pub struct Histogram {
    /// The buckets' upper bounds, in whole units.
    bounds: Box<[u64]>,
    /// One count per bound, and one past the last (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// Durations, with bounds in seconds, counted in microseconds.
    pub fn seconds(bounds: &[f64]) -> Histogram {
        Histogram::new(bounds, 1e-6)
    }

    /// Plain numbers (batch sizes).
    pub fn numbers(bounds: &[f64]) -> Histogram {
        Histogram::new(bounds, 1.0)
    }

    fn new(bounds: &[f64], scale: f64) -> Histogram {
        Histogram {
            bounds: bounds.iter().map(|b| (b / scale).round() as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observes a duration of a [`Histogram::seconds`].
    pub fn time(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// How many values were observed.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Per bucket, not cumulative: the encoder adds them up. The last one is `+Inf`.
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|b| *b as f64 * self.scale)
            .chain([f64::INFINITY])
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum.load(Ordering::Relaxed) as f64 * self.scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The statuses the servers answer with, each with its counter; anything else counts as `other`.
const STATUSES: [&str; 14] = [
    "200", "201", "204", "400", "401", "403", "404", "405", "413", "415", "429", "500", "503", "other",
];

fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        204 => 2,
        400 => 3,
        401 => 4,
        403 => 5,
        404 => 6,
        405 => 7,
        413 => 8,
        415 => 9,
        429 => 10,
        500 => 11,
        503 => 12,
        _ => 13,
    }
}

/// What the server answers itself, outside the two doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Healthz,
    Readyz,
    Metrics,
    Root,
    /// The OpenAPI document and Swagger UI.
    Docs,
    /// The web UI (`/ui/…`).
    Ui,
    /// A path nothing serves (404), or `/1.0/…` with another verb than POST (405).
    Other,
}

const PAGES: [(Page, &str); 7] = [
    (Page::Healthz, "/healthz"),
    (Page::Readyz, "/readyz"),
    (Page::Metrics, "/metrics"),
    (Page::Root, "/"),
    (Page::Docs, "/api/v1/docs"),
    (Page::Ui, "/ui"),
    (Page::Other, "unmatched"),
];

/// Which line of [`Requests`] a request is counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A `/1.0` call: the method's index in the method table, `None` for a name it does not hold.
    Envelope(Option<usize>),
    /// An `/api/v1` request: the route's index in the route table, `None` when no route matched.
    Rest(Option<usize>),
    Page(Page),
}

/// One line of [`Requests`]: its labels, a count per status, and the latency of its requests.
#[derive(Debug)]
struct Line {
    door: &'static str,
    endpoint: String,
    /// The method the line's calls run, for the counts derived from them (allocations).
    method: Option<&'static str>,
    statuses: [AtomicU64; STATUSES.len()],
    latency: Histogram,
}

impl Line {
    fn new(door: &'static str, endpoint: String, method: Option<&'static str>) -> Line {
        Line {
            door,
            endpoint,
            method,
            statuses: Default::default(),
            latency: Histogram::seconds(LATENCY_BOUNDS),
        }
    }
}

/// The requests served, by door, endpoint and status, with their latencies; made once, for the method table and the
/// route table, so every label value comes from a fixed list (an unknown method or path counts on one line).
#[derive(Debug)]
pub struct Requests {
    lines: Box<[Line]>,
    methods: usize,
    routes: usize,
}

impl Requests {
    /// The table for `methods` (names) and REST `routes` (verb, path pattern, method).
    pub fn new(
        methods: impl ExactSizeIterator<Item = &'static str>,
        routes: impl ExactSizeIterator<Item = (&'static str, &'static str, &'static str)>,
    ) -> Requests {
        let (method_count, route_count) = (methods.len(), routes.len());
        let envelope = methods
            .map(|m| Line::new("1.0", m.to_string(), Some(m)))
            .chain([Line::new("1.0", "unknown".into(), None)]);
        let rest = routes
            .map(|(verb, path, method)| Line::new("rest", format!("{verb} {path}"), Some(method)))
            .chain([Line::new("rest", "unmatched".into(), None)]);
        let pages = PAGES.iter().map(|(_, path)| Line::new("server", (*path).into(), None));
        Requests {
            lines: envelope.chain(rest).chain(pages).collect(),
            methods: method_count,
            routes: route_count,
        }
    }

    /// Counts one answered request.
    pub fn record(&self, endpoint: Endpoint, status: u16, elapsed: Duration) {
        let index = match endpoint {
            Endpoint::Envelope(m) => m.filter(|m| *m < self.methods).unwrap_or(self.methods),
            Endpoint::Rest(r) => self.methods + 1 + r.filter(|r| *r < self.routes).unwrap_or(self.routes),
            Endpoint::Page(page) => {
                self.methods + self.routes + 2 + PAGES.iter().position(|(p, _)| *p == page).unwrap_or(0)
            }
        };
        if let Some(line) = self.lines.get(index) {
            line.statuses[status_index(status)].fetch_add(1, Ordering::Relaxed);
            line.latency.time(elapsed);
        }
    }

    /// Successful calls of `method` on either door.
    pub fn succeeded(&self, method: &str) -> u64 {
        self.lines
            .iter()
            .filter(|l| l.method == Some(method))
            .flat_map(|l| l.statuses[..3].iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Writes the request counts (lines and statuses seen at least once) and the latency histograms (endpoints
    /// called at least once).
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "ipamd_http_requests",
            "Requests answered, by front door, endpoint (method, route or page) and HTTP status.",
            None,
            MetricType::Counter,
        )?;
        for line in self.lines.iter() {
            for (status, count) in STATUSES.iter().zip(&line.statuses) {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let labels = [("door", line.door), ("endpoint", &line.endpoint), ("status", status)];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "ipamd_http_request_duration_seconds",
            "Time from the request's head to its answer, by front door and endpoint.",
            None,
            MetricType::Histogram,
        )?;
        for line in self.lines.iter().filter(|l| l.latency.count() > 0) {
            let labels = [("door", line.door), ("endpoint", line.endpoint.as_str())];
            line.latency.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Counters of the request path besides the table: each a relaxed atomic addition.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes one counter family without labels.
pub fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// Writes one gauge family, a sample per label set.
pub fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(&[(&str, &str)], i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// Writes one histogram family without labels.
pub fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &Histogram,
) -> Result<(), std::fmt::Error> {
    histogram.encode(encoder.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_bucket_by_upper_bound_and_sum_in_the_exposed_unit() {
        let h = Histogram::seconds(&[0.001, 0.01]);
        for micros in [1, 1000, 1001, 20_000] {
            h.time(Duration::from_micros(micros));
        }
        let counts: Vec<u64> = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [2, 1, 1], "the bound itself falls in its bucket");
        assert_eq!((h.count(), h.sum.load(Ordering::Relaxed)), (4, 22_002));
    }

    #[test]
    fn requests_count_unknown_names_on_one_line() {
        let r = Requests::new(
            ["ping", "ipaddress/add"].into_iter(),
            [("POST", "/hosts", "ipaddress/add")].into_iter(),
        );
        let ms = Duration::from_millis(1);
        r.record(Endpoint::Envelope(Some(1)), 200, ms);
        r.record(Endpoint::Rest(Some(0)), 201, ms);
        r.record(Endpoint::Rest(Some(0)), 400, ms);
        r.record(Endpoint::Envelope(None), 404, ms);
        r.record(Endpoint::Envelope(Some(9)), 404, ms);
        r.record(Endpoint::Page(Page::Other), 999, ms);
        assert_eq!(r.succeeded("ipaddress/add"), 2);
        let unknown = &r.lines[2];
        assert_eq!(
            (unknown.endpoint.as_str(), unknown.statuses[6].load(Ordering::Relaxed)),
            ("unknown", 2)
        );
        let other = r.lines.last().unwrap();
        assert_eq!(
            (other.endpoint.as_str(), other.statuses[13].load(Ordering::Relaxed)),
            ("unmatched", 1)
        );
    }
}
