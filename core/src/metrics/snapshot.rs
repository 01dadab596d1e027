//! [`MetricsSnapshot`]: what a registry counted, as metric families of
//! samples; written in the Prometheus text format (0.0.4).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::histogram::{HistogramValue, BUCKETS, BUCKET_BOUNDS_SECONDS};
use super::{def_named, Def};
use crate::error::{Error, Result};

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// A value read when the snapshot was taken.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

impl MetricKind {
    /// `"counter"`, `"gauge"` or `"histogram"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleValue {
    /// A counter's or a gauge's value.
    Count(u64),
    /// A histogram's buckets and sum.
    Histogram(HistogramValue),
}

/// One labelled series of a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Label names and values, in the family's order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: SampleValue,
}

impl Sample {
    /// The value of the label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn matches(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(n, v)| self.label(n) == Some(v))
    }
}

/// One metric: its name, type, help and samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricFamily {
    /// The metric's name (`module_registry_...`).
    pub name: String,
    /// Its type.
    pub kind: MetricKind,
    /// What it counts.
    pub help: String,
    /// Its series.
    pub samples: Vec<Sample>,
}

impl MetricFamily {
    pub(super) fn of(def: &Def) -> Self {
        MetricFamily {
            name: def.name.to_string(),
            kind: def.kind,
            help: def.help.to_string(),
            samples: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, def: &Def, labels: &[&str], value: SampleValue) {
        self.samples.push(Sample {
            labels: def
                .labels
                .iter()
                .zip(labels)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }
}

/// A module's calls, as a notebook's table shows them
/// ([`MetricsSnapshot::calls_by_module`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSummary {
    /// Calls counted.
    pub calls: u64,
    /// Of which failed or timed out.
    pub failures: u64,
    /// The median duration in seconds (`None` when no duration was kept).
    pub median_seconds: Option<f64>,
}

/// What a registry counted when it was taken
/// ([`ModuleRegistry::metrics`](crate::ModuleRegistry::metrics)).
///
/// ```
/// use module_registry::ModuleRegistry;
///
/// let registry = ModuleRegistry::with_native_modules();
/// let digest = registry.create("sha256")?;
/// digest.process("a")?;
/// digest.process("b")?;
/// let metrics = registry.metrics()?;
/// let calls = metrics.value(
///     "module_registry_module_calls_total",
///     &[("module", "sha256"), ("outcome", "ok")],
/// );
/// assert_eq!(calls, 2);
/// assert!(metrics.to_prometheus().contains("# TYPE module_registry_module_calls_total counter"));
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Whether counting was on.
    pub enabled: bool,
    /// Every family (those with no samples too).
    pub families: Vec<MetricFamily>,
}

impl MetricsSnapshot {
    /// The family named `name`.
    pub fn family(&self, name: &str) -> Option<&MetricFamily> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The sum over the samples of `name` whose labels include `labels`:
    /// a counter's or a gauge's values, a histogram's counts (0 when none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.family(name).map_or(0, |f| {
            f.samples
                .iter()
                .filter(|s| s.matches(labels))
                .map(|s| match &s.value {
                    SampleValue::Count(n) => *n,
                    SampleValue::Histogram(h) => h.count(),
                })
                .sum()
        })
    }

    /// Per module name (all its versions together): calls, failures
    /// (`failed` and `timeout`) and the median call duration in seconds
    /// (see [`HistogramValue::median`]); only modules that were called.
    pub fn calls_by_module(&self) -> std::collections::BTreeMap<String, CallSummary> {
        let mut out = std::collections::BTreeMap::<String, (u64, u64, HistogramValue)>::new();
        let empty = || HistogramValue {
            buckets: vec![0; BUCKETS],
            sum: 0.0,
        };
        for s in self
            .family(super::MODULE_CALLS.name)
            .map_or(&[][..], |f| &f.samples)
        {
            let (Some(name), SampleValue::Count(n)) = (s.label("module"), &s.value) else {
                continue;
            };
            let entry = out
                .entry(name.to_string())
                .or_insert_with(|| (0, 0, empty()));
            entry.0 += n;
            if s.label("outcome") != Some("ok") {
                entry.1 += n;
            }
        }
        for s in self
            .family(super::MODULE_DURATION.name)
            .map_or(&[][..], |f| &f.samples)
        {
            let (Some(name), SampleValue::Histogram(h)) = (s.label("module"), &s.value) else {
                continue;
            };
            if let Some(entry) = out.get_mut(name) {
                for (mine, theirs) in entry.2.buckets.iter_mut().zip(&h.buckets) {
                    *mine += theirs;
                }
                entry.2.sum += h.sum;
            }
        }
        out.into_iter()
            .map(|(name, (calls, failures, h))| {
                let summary = CallSummary {
                    calls,
                    failures,
                    median_seconds: h.median(),
                };
                (name, summary)
            })
            .collect()
    }

    /// What was counted since `earlier` (a snapshot of the same registry):
    /// counters and histograms less what they were then; no gauges.
    pub fn since(&self, earlier: &MetricsSnapshot) -> MetricsSnapshot {
        let families = self
            .families
            .iter()
            .filter(|f| f.kind != MetricKind::Gauge)
            .map(|f| {
                let before = earlier.family(&f.name);
                let samples = f
                    .samples
                    .iter()
                    .filter_map(|s| {
                        let old =
                            before.and_then(|b| b.samples.iter().find(|o| o.labels == s.labels));
                        let value = match (&s.value, old.map(|o| &o.value)) {
                            (SampleValue::Count(n), Some(SampleValue::Count(o))) => {
                                SampleValue::Count(n.saturating_sub(*o))
                            }
                            (SampleValue::Histogram(h), Some(SampleValue::Histogram(o))) => {
                                SampleValue::Histogram(HistogramValue {
                                    buckets: h
                                        .buckets
                                        .iter()
                                        .zip(o.buckets.iter().chain(std::iter::repeat(&0)))
                                        .map(|(a, b)| a.saturating_sub(*b))
                                        .collect(),
                                    sum: (h.sum - o.sum).max(0.0),
                                })
                            }
                            (v, _) => v.clone(),
                        };
                        let empty = match &value {
                            SampleValue::Count(n) => *n == 0,
                            SampleValue::Histogram(h) => h.count() == 0,
                        };
                        (!empty).then(|| Sample {
                            labels: s.labels.clone(),
                            value,
                        })
                    })
                    .collect();
                MetricFamily {
                    samples,
                    ..MetricFamily::of(def_named(&f.name).unwrap_or(super::MODULE_CALLS))
                }
            })
            .filter(|f| def_named(&f.name).is_some())
            .collect();
        MetricsSnapshot {
            enabled: self.enabled,
            families,
        }
    }

    /// Refuses a family this crate does not define, a sample without its
    /// family's labels or with a value of the wrong type, and a histogram
    /// with the wrong number of buckets (a snapshot that came from outside).
    pub(crate) fn check(&self) -> Result<()> {
        for f in &self.families {
            let def = def_named(&f.name).ok_or_else(|| {
                Error::invalid_input(format!("metrics: no metric is named {:?}", f.name))
            })?;
            for s in &f.samples {
                let names: Vec<&str> = s.labels.iter().map(|(n, _)| n.as_str()).collect();
                if names != def.labels {
                    return Err(Error::invalid_input(format!(
                        "metrics: {} has labels {:?}, not {:?}",
                        def.name, def.labels, names
                    )));
                }
                let fits = match (&s.value, def.kind) {
                    (SampleValue::Histogram(h), MetricKind::Histogram) => {
                        h.buckets.len() == BUCKETS && h.sum.is_finite() && h.sum >= 0.0
                    }
                    (SampleValue::Count(_), MetricKind::Counter | MetricKind::Gauge) => true,
                    _ => false,
                };
                if !fits {
                    return Err(Error::invalid_input(format!(
                        "metrics: a sample of {} is not a {} (histograms have {BUCKETS} buckets)",
                        def.name,
                        def.kind.as_str()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The Prometheus text format (version 0.0.4): `# HELP` and `# TYPE`
    /// per family, a line per sample (histograms as cumulative `_bucket`
    /// lines with `le`, then `_sum` and `_count`), label values escaped.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(256 + 160 * self.families.len());
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for s in &f.samples {
                match &s.value {
                    SampleValue::Count(n) => {
                        out.push_str(&f.name);
                        write_labels(&mut out, &s.labels, None);
                        let _ = writeln!(out, " {n}");
                    }
                    SampleValue::Histogram(h) => write_histogram(&mut out, &f.name, &s.labels, h),
                }
            }
        }
        out
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &[(String, String)], h: &HistogramValue) {
    let mut cumulative = 0;
    for (i, c) in h.buckets.iter().enumerate() {
        cumulative += c;
        let le = BUCKET_BOUNDS_SECONDS
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| format!("{b:e}"));
        let _ = write!(out, "{name}_bucket");
        write_labels(out, labels, Some(&le));
        let _ = writeln!(out, " {cumulative}");
    }
    let _ = write!(out, "{name}_sum");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {}", h.sum);
    let _ = write!(out, "{name}_count");
    write_labels(out, labels, None);
    let _ = writeln!(out, " {cumulative}");
}

fn write_labels(out: &mut String, labels: &[(String, String)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (n, v) in labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(le.map(|le| ("le", le)))
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        escape_value(out, v);
        out.push('"');
    }
    out.push('}');
}

/// A label value: backslash, double quote and newline escaped.
fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: backslash and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}
