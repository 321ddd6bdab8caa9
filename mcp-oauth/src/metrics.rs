//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`, off by
//! default). Without the feature every function here is a no-op, so callers never need a
//! `cfg`. With it, values go to whatever recorder the application installed (Prometheus,
//! StatsD, OpenTelemetry exporters…); with no recorder installed they cost a few atomic loads.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `mcp_oauth_decisions_total` | counter | `outcome` (`allowed`/`refused`), `reason` ([audit reason](crate::audit::reason) or [`TokenError::reason`](crate::TokenError::reason)) | every decision of the HTTP layer, as its audit event |
//! | `mcp_oauth_token_validation_duration_seconds` | histogram | `outcome` (`accepted`/`refused`/`unavailable`) | time the layer spent in [`Validator::validate`](crate::Validator::validate) |
//! | `mcp_oauth_key_set_fetches_total` | counter | `issuer` | key-set fetch attempts ([`KeySetStats::fetches`](crate::key_set::KeySetStats)) |
//! | `mcp_oauth_key_set_fetch_failures_total` | counter | `issuer` | failed fetch attempts |
//! | `mcp_oauth_key_set_unknown_kid_refreshes_total` | counter | `issuer` | refreshes caused by an unknown `kid` |
//! | `mcp_oauth_token_cache_hits_total` | counter | | verified-token cache hits ([`TokenCacheStats`]) |
//! | `mcp_oauth_token_cache_misses_total` | counter | | verified-token cache misses |
//! | `mcp_oauth_token_cache_entries` | gauge | | entries held |
//! | `mcp_oauth_token_cache_hit_ratio` | gauge | | hits / (hits + misses) since start, 0 before any lookup |
//! | `mcp_oauth_introspection_duration_seconds` | histogram | `outcome` (`active`/`inactive`/`refused`/`error`/`timeout`) | one RFC 7662 introspection call, end to end |
//! | `mcp_oauth_introspection_requests_total` | counter | `outcome` | introspection calls |
//! | `mcp_oauth_shared_store_failures_total` | counter | `operation` (`rate_limit`, `replay`, `session`, `introspection`, `revocation`, `ping`) | operations on the shared store ([`crate::redis`]) that failed or timed out; rate limits then use the local share of each budget |
//! | `mcp_oauth_shared_store_available` | gauge | | 1 while the shared store answers, 0 during an outage |
//!
//! The key-set and token-cache counters mirror the validator's own statistics: the layer
//! exports them as absolute values when it makes a decision, at most once a second
//! ([`EXPORT_INTERVAL`]), and [`OAuthLayer::export_metrics`](crate::http::OAuthLayer::export_metrics)
//! exports them on demand (call it from a scrape handler for exact values on an idle server).
//! Labels are bounded: issuers are the configured ones, reasons and outcomes fixed codes.

use std::time::Duration;

use crate::key_set::KeySetStats;
use crate::token_cache::TokenCacheStats;

/// How often, at most, a layer exports the validator's statistics on its own.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Metric names, for recorders that want to describe or filter them.
pub mod names {
    /// Counter: decisions by `outcome` and `reason`.
    pub const DECISIONS: &str = "mcp_oauth_decisions_total";
    /// Histogram (seconds): token validation by `outcome`.
    pub const VALIDATION_DURATION: &str = "mcp_oauth_token_validation_duration_seconds";
    /// Counter: key-set fetches by `issuer`.
    pub const KEY_SET_FETCHES: &str = "mcp_oauth_key_set_fetches_total";
    /// Counter: failed key-set fetches by `issuer`.
    pub const KEY_SET_FETCH_FAILURES: &str = "mcp_oauth_key_set_fetch_failures_total";
    /// Counter: unknown-`kid` refreshes by `issuer`.
    pub const KEY_SET_UNKNOWN_KID_REFRESHES: &str = "mcp_oauth_key_set_unknown_kid_refreshes_total";
    /// Counter: token-cache hits.
    pub const TOKEN_CACHE_HITS: &str = "mcp_oauth_token_cache_hits_total";
    /// Counter: token-cache misses.
    pub const TOKEN_CACHE_MISSES: &str = "mcp_oauth_token_cache_misses_total";
    /// Gauge: token-cache entries.
    pub const TOKEN_CACHE_ENTRIES: &str = "mcp_oauth_token_cache_entries";
    /// Gauge: token-cache hit ratio.
    pub const TOKEN_CACHE_HIT_RATIO: &str = "mcp_oauth_token_cache_hit_ratio";
    /// Histogram (seconds): introspection calls by `outcome`.
    pub const INTROSPECTION_DURATION: &str = "mcp_oauth_introspection_duration_seconds";
    /// Counter: introspection calls by `outcome`.
    pub const INTROSPECTION_REQUESTS: &str = "mcp_oauth_introspection_requests_total";
    /// Counter: failed shared-store operations by `operation`.
    pub const SHARED_STORE_FAILURES: &str = "mcp_oauth_shared_store_failures_total";
    /// Gauge: whether the shared store answers (1) or not (0).
    pub const SHARED_STORE_AVAILABLE: &str = "mcp_oauth_shared_store_available";
    /// Counter: token exchanges for downstream APIs by `reason` (`token_exchanged`,
    /// `token_exchange_cached`, `token_exchange_failed`).
    pub const TOKEN_EXCHANGES: &str = "mcp_oauth_token_exchanges_total";
}

/// Records a shared-store operation that failed or timed out.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn record_shared_store_failure(operation: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::SHARED_STORE_FAILURES, "operation" => operation).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = operation;
}

/// Records whether the shared store answers.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn record_shared_store_available(available: bool) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!(names::SHARED_STORE_AVAILABLE).set(if available { 1.0 } else { 0.0 });
    #[cfg(not(feature = "metrics"))]
    let _ = available;
}

/// Records one token exchange (`reason`: its audit reason).
pub(crate) fn record_token_exchange(reason: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::TOKEN_EXCHANGES, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// Records one decision (`outcome`: `allowed` or `refused`; `reason`: its audit reason).
#[cfg_attr(not(feature = "layer"), allow(dead_code))]
pub(crate) fn record_decision(outcome: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(names::DECISIONS, "outcome" => outcome, "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (outcome, reason);
}

/// Records the time one token validation took (`outcome`: `accepted`, `refused` or
/// `unavailable`).
#[cfg_attr(not(feature = "layer"), allow(dead_code))]
pub(crate) fn record_validation(duration: Duration, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(names::VALIDATION_DURATION, "outcome" => outcome)
        .record(duration.as_secs_f64());
    #[cfg(not(feature = "metrics"))]
    let _ = (duration, outcome);
}

/// Records one RFC 7662 introspection call: how long it took, end to end (connect, request,
/// response parsing; not time spent waiting for another caller's single-flight call), and its
/// `outcome`, a fixed snake_case code such as `active`, `inactive`, `error` or `timeout`
/// (keep the set small: it is a label). For the introspection verifier to call.
pub(crate) fn record_introspection(duration: Duration, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::histogram!(names::INTROSPECTION_DURATION, "outcome" => outcome)
            .record(duration.as_secs_f64());
        ::metrics::counter!(names::INTROSPECTION_REQUESTS, "outcome" => outcome).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (duration, outcome);
}

/// The statistics [`export_validator`] exports: a snapshot of a validator's counters, taken
/// with `Snapshot::from(&validator)` (the same conversion `export_validator(&validator)`
/// makes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Each issuer's key-set counters, labelled by its policy's issuer.
    pub key_sets: Vec<(String, KeySetStats)>,
    /// The verified-token cache's counters, when the cache is on.
    pub token_cache: Option<TokenCacheStats>,
}

/// Exports a validator's key-set and token-cache statistics as absolute values:
/// `export_validator(&validator)`, or a [`Snapshot`]. Without the `metrics` feature nothing
/// is read.
pub fn export_validator(validator: impl Into<Snapshot>) {
    #[cfg(feature = "metrics")]
    {
        let snapshot: Snapshot = validator.into();
        for (issuer, stats) in snapshot.key_sets {
            ::metrics::counter!(names::KEY_SET_FETCHES, "issuer" => issuer.clone())
                .absolute(stats.fetches);
            ::metrics::counter!(names::KEY_SET_FETCH_FAILURES, "issuer" => issuer.clone())
                .absolute(stats.failures);
            ::metrics::counter!(names::KEY_SET_UNKNOWN_KID_REFRESHES, "issuer" => issuer)
                .absolute(stats.unknown_kid_refreshes);
        }
        if let Some(stats) = snapshot.token_cache {
            ::metrics::counter!(names::TOKEN_CACHE_HITS).absolute(stats.hits);
            ::metrics::counter!(names::TOKEN_CACHE_MISSES).absolute(stats.misses);
            ::metrics::gauge!(names::TOKEN_CACHE_ENTRIES).set(stats.entries as f64);
            let lookups = stats.hits.saturating_add(stats.misses);
            let ratio = if lookups == 0 {
                0.0
            } else {
                stats.hits as f64 / lookups as f64
            };
            ::metrics::gauge!(names::TOKEN_CACHE_HIT_RATIO).set(ratio);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = validator;
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use ::metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };
    use parking_lot::Mutex;

    /// Every value recorded, by rendered key (`name{label=value,…}`).
    #[derive(Default, Clone)]
    struct Capture(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Cell(Arc<Mutex<BTreeMap<String, f64>>>, String);

    impl CounterFn for Cell {
        fn increment(&self, value: u64) {
            *self.0.lock().entry(self.1.clone()).or_default() += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0.lock().insert(self.1.clone(), value as f64);
        }
    }
    impl GaugeFn for Cell {
        fn increment(&self, value: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() += value;
        }
        fn decrement(&self, value: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() -= value;
        }
        fn set(&self, value: f64) {
            self.0.lock().insert(self.1.clone(), value);
        }
    }
    impl HistogramFn for Cell {
        fn record(&self, _value: f64) {
            *self.0.lock().entry(self.1.clone()).or_default() += 1.0;
        }
    }

    impl Capture {
        fn cell(&self, key: &Key) -> Arc<Cell> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Arc::new(Cell(
                self.0.clone(),
                format!("{}{{{}}}", key.name(), labels.join(",")),
            ))
        }
    }

    impl Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.cell(key))
        }
    }

    #[test]
    fn decisions_validations_and_introspections_are_recorded_under_their_names() {
        let capture = Capture::default();
        ::metrics::with_local_recorder(&capture, || {
            record_decision("refused", "expired");
            record_decision("refused", "expired");
            record_decision("allowed", "allowed");
            record_validation(Duration::from_millis(2), "accepted");
            record_introspection(Duration::from_millis(30), "active");
        });
        let values = capture.0.lock().clone();
        assert_eq!(
            values["mcp_oauth_decisions_total{outcome=refused,reason=expired}"],
            2.0
        );
        assert_eq!(
            values["mcp_oauth_decisions_total{outcome=allowed,reason=allowed}"],
            1.0
        );
        assert_eq!(
            values["mcp_oauth_token_validation_duration_seconds{outcome=accepted}"],
            1.0
        );
        assert_eq!(
            values["mcp_oauth_introspection_duration_seconds{outcome=active}"],
            1.0
        );
        assert_eq!(
            values["mcp_oauth_introspection_requests_total{outcome=active}"],
            1.0
        );
    }

    #[test]
    fn the_validator_statistics_are_exported_as_absolute_values() {
        let snapshot = Snapshot {
            key_sets: vec![(
                "https://issuer.example".to_owned(),
                KeySetStats {
                    fetches: 3,
                    failures: 1,
                    unknown_kid_refreshes: 2,
                },
            )],
            token_cache: Some(TokenCacheStats {
                hits: 3,
                misses: 1,
                entries: 7,
            }),
        };
        let capture = Capture::default();
        ::metrics::with_local_recorder(&capture, || {
            // Absolute values: exporting twice does not add up.
            export_validator(snapshot.clone());
            export_validator(snapshot);
        });
        let values = capture.0.lock().clone();
        let issuer = "issuer=https://issuer.example";
        assert_eq!(
            values[&format!("mcp_oauth_key_set_fetches_total{{{issuer}}}")],
            3.0
        );
        assert_eq!(
            values[&format!("mcp_oauth_key_set_fetch_failures_total{{{issuer}}}")],
            1.0
        );
        assert_eq!(
            values[&format!("mcp_oauth_key_set_unknown_kid_refreshes_total{{{issuer}}}")],
            2.0
        );
        assert_eq!(values["mcp_oauth_token_cache_hits_total{}"], 3.0);
        assert_eq!(values["mcp_oauth_token_cache_misses_total{}"], 1.0);
        assert_eq!(values["mcp_oauth_token_cache_hit_ratio{}"], 0.75);
        assert_eq!(values["mcp_oauth_token_cache_entries{}"], 7.0);
    }
}
