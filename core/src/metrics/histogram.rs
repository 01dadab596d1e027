//! Histograms with fixed exponential buckets: 1 µs, 4 µs, 16 µs, ... (each
//! four times the one before) up to about 67 s, then `+Inf`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Finite bucket bounds.
const BOUNDS: usize = 14;

/// The upper bounds of the buckets in nanoseconds.
const BOUNDS_NS: [u64; BOUNDS] = {
    let mut b = [0u64; BOUNDS];
    let mut i = 0;
    let mut v = 1_000u64;
    while i < BOUNDS {
        b[i] = v;
        v *= 4;
        i += 1;
    }
    b
};

/// The upper bounds of the buckets in seconds (`+Inf` after the last).
pub const BUCKET_BOUNDS_SECONDS: [f64; BOUNDS] = {
    let mut b = [0f64; BOUNDS];
    let mut i = 0;
    while i < BOUNDS {
        b[i] = BOUNDS_NS[i] as f64 / 1e9;
        i += 1;
    }
    b
};

#[inline]
fn bucket(ns: u64) -> usize {
    // Most calls are short: the first bounds decide them.
    let mut i = 0;
    while i < BOUNDS && ns > BOUNDS_NS[i] {
        i += 1;
    }
    i
}

/// A histogram's counts: per bucket (not cumulative; the last is `+Inf`),
/// the sum of what was observed and how many were.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramValue {
    /// Observations per bucket, one more than [`BUCKET_BOUNDS_SECONDS`] (the last is `+Inf`).
    pub buckets: Vec<u64>,
    /// The sum of what was observed, in seconds.
    pub sum: f64,
}

impl HistogramValue {
    /// How many were observed.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The median, estimated as Prometheus's `histogram_quantile` does:
    /// linearly within the bucket that holds it (from 0 in the first);
    /// the last finite bound when it is in `+Inf`; `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = count as f64 / 2.0;
        let mut seen = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            if c > 0 && (seen + c) as f64 >= rank {
                let Some(&upper) = BUCKET_BOUNDS_SECONDS.get(i) else {
                    return Some(BUCKET_BOUNDS_SECONDS[BOUNDS - 1]);
                };
                let lower = if i == 0 {
                    0.0
                } else {
                    BUCKET_BOUNDS_SECONDS[i - 1]
                };
                return Some(lower + (upper - lower) * (rank - seen as f64) / c as f64);
            }
            seen += c;
        }
        Some(BUCKET_BOUNDS_SECONDS[BOUNDS - 1])
    }
}

/// Lock-free: a call adds to two counters.
#[derive(Debug, Default)]
pub(crate) struct AtomicHistogram {
    buckets: [AtomicU64; BOUNDS + 1],
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    #[inline]
    pub(crate) fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn value(&self) -> HistogramValue {
        HistogramValue {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    pub(crate) fn add(&self, h: &HistogramValue) {
        for (mine, theirs) in self.buckets.iter().zip(&h.buckets) {
            mine.fetch_add(*theirs, Ordering::Relaxed);
        }
        self.sum_ns
            .fetch_add(seconds_to_ns(h.sum), Ordering::Relaxed);
    }
}

fn seconds_to_ns(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1e9).round() as u64
    } else {
        0
    }
}

/// Under the store's lock.
#[derive(Debug, Default)]
pub(crate) struct Plain {
    buckets: [u64; BOUNDS + 1],
    sum_ns: u64,
}

impl Plain {
    pub(crate) fn value(&self) -> HistogramValue {
        HistogramValue {
            buckets: self.buckets.to_vec(),
            sum: self.sum_ns as f64 / 1e9,
        }
    }

    pub(crate) fn add(&mut self, h: &HistogramValue) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&h.buckets) {
            *mine += theirs;
        }
        self.sum_ns = self.sum_ns.saturating_add(seconds_to_ns(h.sum));
    }
}

/// The number of buckets a [`HistogramValue`] has.
pub(crate) const BUCKETS: usize = BOUNDS + 1;
