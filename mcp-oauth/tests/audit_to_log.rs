//! Before any `tracing` subscriber is set, `tracing` hands events to the `log` crate (its
//! `log` feature): `TracingSink` is then enabled exactly when a `log` logger would take an
//! `INFO` record of the audit target, and its events reach that logger. Its own binary: the
//! logger and "no subscriber ever set" are process-wide.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mcp_oauth::audit::{AuditEvent, AuditSink, Outcome, TARGET, TracingSink, reason};

/// Takes `INFO` and above, of the audit target only while `AUDIT` is on; counts audit records.
struct Logger;

static AUDIT: AtomicBool = AtomicBool::new(true);
static RECORDS: AtomicUsize = AtomicUsize::new(0);

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
            && (metadata.target() != TARGET || AUDIT.load(Ordering::SeqCst))
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) && record.target() == TARGET {
            RECORDS.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn flush(&self) {}
}

fn event() -> AuditEvent<'static> {
    AuditEvent::new(Outcome::Refused, reason::NO_CREDENTIALS, 401, "r")
}

#[test]
fn without_a_subscriber_the_sink_follows_the_log_logger() {
    assert!(!tracing::dispatcher::has_been_set());
    // No logger: nobody would see the event, so none is built.
    assert!(!TracingSink.enabled(Outcome::Allowed));
    assert!(!TracingSink.enabled(Outcome::Refused));
    TracingSink.record(&event());
    assert_eq!(RECORDS.load(Ordering::SeqCst), 0);

    log::set_logger(&Logger).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    assert!(TracingSink.enabled(Outcome::Allowed));
    TracingSink.record(&event());
    assert_eq!(
        RECORDS.load(Ordering::SeqCst),
        1,
        "the event reached the logger"
    );

    // A logger that filters the audit target out.
    AUDIT.store(false, Ordering::SeqCst);
    assert!(!TracingSink.enabled(Outcome::Refused));
    TracingSink.record(&event());
    assert_eq!(RECORDS.load(Ordering::SeqCst), 1);
}
