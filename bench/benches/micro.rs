//! Micro-benchmarks (criterion). Run with the comparisons:
//!
//! ```sh
//! CARGO_TARGET_DIR=$PWD/target/bench cargo bench -p mcp-oauth-bench --features peers --bench micro
//! CARGO_TARGET_DIR=$PWD/target/bench cargo run -p mcp-oauth-bench --release --bin summary
//! ```
//!
//! Groups (criterion ids `group/function`):
//! - `cold-<ALG>`: one validation with nothing cached, for RS256, PS256, ES256, EdDSA:
//!   `mcp-oauth` (`Validator::validate`, token cache off), `floor` (aws-lc-rs `verify_sig` with
//!   a pre-parsed key, signature pre-decoded), and with `--features peers` `jsonwebtoken`
//!   (`decode` with a `DecodingKey` built once, aud/iss/exp checked) and `jwt-authorizer`
//!   (`Authorizer::check_auth`).
//! - `layer-<ALG>`: one `GET /mcp` through a tower layer around a service that answers at once,
//!   token cache off: `mcp-oauth` (`OAuthLayer`) and `tower-oauth2-resource-server` (whose
//!   validation is only reachable through its layer).
//! - `warm`: `validate-1KiB` (a verified-token cache hit for a 1,024-byte token),
//!   `layer-GET-1KiB` (the whole guard of a request whose token is cached), and the SHA-256 of
//!   that token with `sha2` (what the cache key uses) and with aws-lc-rs.
//! - `scaling-RS256`: cold validations on 1 and on 2 threads at once (time per validation per
//!   thread; scaling = 2 × t(1) / t(2)).
//! - `keyset`: `RemoteKeySet::key_for` on 1 and on 2 threads at once.
//! - `challenge`: rendering the 401 discovery, 401 `invalid_token` and 403 step-up challenges.
//! - `tool-name`: `POST /mcp` with a `tools/call` body of 1 KiB and 64 KiB through the layer,
//!   cache warm (the layer reads the body and extracts the tool names), against `GET` (no body)
//!   and against one `serde_json` pass over the same bodies.
//! - `audit`: one allowed `tools/call` audit event as a JSON line: `to_json-to_string` (the
//!   `serde_json::Value` path, what `JsonLinesSink` wrote before) against `write_json_line`
//!   (the direct writer into a reused buffer); then `JsonLinesSink::record`, direct
//!   (`direct-*`: written and flushed before it returns) and non-blocking (`non_blocking-*`:
//!   the request's share only, the sink's thread writes), to `io::sink()`, `/dev/null` and a
//!   file in the temporary directory.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_oauth::audit::{self, AuditEvent, AuditSink, JsonLinesSink, Outcome};
use mcp_oauth::challenge::Challenge;
use mcp_oauth::crypto::Algorithm;
use mcp_oauth::validation::ErrorCode;
use mcp_oauth::{ScopeSet, Validator};
use mcp_oauth_bench::{
    Alg, Floor, Issuer, McpLayerService, block_on, get_mcp, mcp_layer, post_mcp, tools_call_body,
};
use tower::ServiceExt;

struct Setup {
    // Serves the issuer (and the peers' key fetches) for the whole run.
    #[cfg_attr(not(feature = "peers"), allow(dead_code))]
    runtime: tokio::runtime::Runtime,
    issuer: Issuer,
    cold: Validator,
    warm: Validator,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (issuer, cold, warm) = runtime.block_on(async {
        let issuer = Issuer::start(mcp_oauth_bench::AUDIENCE).await;
        let cold = issuer.validator(false).await;
        let warm = issuer.validator(true).await;
        (issuer, cold, warm)
    });
    Setup {
        runtime,
        issuer,
        cold,
        warm,
    }
}

fn through(service: &McpLayerService, request: http::Request<http_body_util::Full<Bytes>>) -> u16 {
    block_on(service.clone().oneshot(request))
        .expect("infallible")
        .status()
        .as_u16()
}

fn cold(c: &mut Criterion, s: &Setup) {
    #[cfg(feature = "peers")]
    let authorizer = s
        .runtime
        .block_on(mcp_oauth_bench::peers::jwt_authorizer(&s.issuer));
    for alg in Alg::ALL {
        let token = s.issuer.token(alg);
        let floor = Floor::new(alg, s.issuer.key(alg), &token);
        assert!(floor.verify(), "the floor verifies {}", alg.name());
        assert!(block_on(s.cold.validate(&token)).is_ok());
        let mut group = c.benchmark_group(format!("cold-{}", alg.name()));
        group.bench_function("mcp-oauth", |b| {
            b.iter(|| block_on(s.cold.validate(black_box(&token))).is_ok())
        });
        group.bench_function("floor", |b| b.iter(|| black_box(&floor).verify()));
        #[cfg(feature = "peers")]
        {
            let jwt = mcp_oauth_bench::peers::JsonWebToken::new(&s.issuer, alg);
            assert!(jwt.decode(&token).is_ok(), "jsonwebtoken accepts");
            group.bench_function("jsonwebtoken", |b| {
                b.iter(|| jwt.decode(black_box(&token)).is_ok())
            });
            group.bench_function("jwt-authorizer", |b| {
                b.iter(|| block_on(authorizer.check_auth(black_box(&token))).is_ok())
            });
        }
        group.finish();
    }
}

fn layer(c: &mut Criterion, s: &Setup) {
    let ours = mcp_layer(&s.issuer, s.cold.clone());
    #[cfg(feature = "peers")]
    let theirs = s
        .runtime
        .block_on(mcp_oauth_bench::peers::tower_oauth2(&s.issuer));
    for alg in Alg::ALL {
        let token = s.issuer.token(alg);
        assert_eq!(through(&ours, get_mcp(&token)), 200);
        let mut group = c.benchmark_group(format!("layer-{}", alg.name()));
        group.bench_function("mcp-oauth", |b| {
            b.iter_batched(
                || get_mcp(&token),
                |request| through(&ours, request),
                BatchSize::SmallInput,
            )
        });
        #[cfg(feature = "peers")]
        group.bench_function("tower-oauth2-resource-server", |b| {
            b.iter_batched(
                || get_mcp(&token),
                |request| {
                    block_on(theirs.clone().oneshot(request))
                        .expect("infallible")
                        .status()
                        .as_u16()
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

fn warm(c: &mut Criterion, s: &Setup) {
    let token = s.issuer.token_of_size(Alg::RS256, 1024);
    assert!((1024..1028).contains(&token.len()), "{}", token.len());
    let first = block_on(s.warm.validate(&token)).expect("valid");
    let again = block_on(s.warm.validate(&token)).expect("valid");
    assert!(first.is_same_verification(&again), "the second is a hit");
    let layer = mcp_layer(&s.issuer, s.warm.clone());
    assert_eq!(through(&layer, get_mcp(&token)), 200);
    let mut group = c.benchmark_group("warm");
    group.bench_function("validate-1KiB", |b| {
        b.iter(|| block_on(s.warm.validate(black_box(&token))).is_ok())
    });
    // What the hit's SHA-256 of the token costs, with mcp-oauth's `sha2` and with aws-lc-rs.
    group.bench_function("sha256-1KiB-sha2", |b| {
        b.iter(|| {
            let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                black_box(token.as_bytes()),
            ))
            .into();
            digest
        })
    });
    group.bench_function("sha256-1KiB-aws-lc", |b| {
        b.iter(|| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes()))
        })
    });
    group.bench_function("layer-GET-1KiB", |b| {
        b.iter_batched(
            || get_mcp(&token),
            |request| through(&layer, request),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Runs `op` `iters` times on each of `threads` threads released together and returns the
/// wall time until the last one finishes. Criterion divides it by `iters`: the time per
/// operation per thread, equal to one thread's when they scale perfectly.
fn on_threads(threads: usize, iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    op();
                }
            });
        }
        barrier.wait();
        // Measured once the scope has joined every thread.
        Instant::now()
    })
    .elapsed()
}

fn scaling(c: &mut Criterion, s: &Setup) {
    let token = s.issuer.token(Alg::RS256);
    let mut group = c.benchmark_group("scaling-RS256");
    for threads in [1, 2] {
        let op = || {
            assert!(block_on(s.cold.validate(&token)).is_ok());
        };
        group.bench_function(format!("mcp-oauth-{threads}t"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &op))
        });
    }
    #[cfg(feature = "peers")]
    {
        let authorizer = s
            .runtime
            .block_on(mcp_oauth_bench::peers::jwt_authorizer(&s.issuer));
        let jwt = mcp_oauth_bench::peers::JsonWebToken::new(&s.issuer, Alg::RS256);
        for threads in [1, 2] {
            let op = || {
                assert!(block_on(authorizer.check_auth(&token)).is_ok());
            };
            group.bench_function(format!("jwt-authorizer-{threads}t"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, &op))
            });
            let op = || {
                assert!(jwt.decode(&token).is_ok());
            };
            group.bench_function(format!("jsonwebtoken-{threads}t"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, &op))
            });
        }
    }
    group.finish();
}

fn keyset(c: &mut Criterion, s: &Setup) {
    let keys = s
        .cold
        .key_set(s.issuer.issuer.issuer())
        .expect("the issuer's key set")
        .clone();
    let kid = s.issuer.key(Alg::ES256).kid().to_owned();
    assert!(block_on(keys.key_for(Some(&kid), Algorithm::ES256)).is_ok());
    let mut group = c.benchmark_group("keyset");
    for threads in [1, 2] {
        let op = || {
            black_box(block_on(keys.key_for(Some(black_box(&kid)), Algorithm::ES256)).is_ok());
        };
        group.bench_function(format!("key_for-{threads}t"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, &op))
        });
    }
    group.finish();
}

fn challenge(c: &mut Criterion) {
    let metadata = "https://calendar.example.com/.well-known/oauth-protected-resource/mcp";
    let mut group = c.benchmark_group("challenge");
    group.bench_function("401-discovery", |b| {
        b.iter(|| {
            Challenge::new(black_box(metadata))
                .scope(ScopeSet::from_space_separated("calendar:read"))
                .render()
        })
    });
    group.bench_function("401-invalid_token", |b| {
        b.iter(|| {
            Challenge::new(black_box(metadata))
                .error(ErrorCode::InvalidToken)
                .description("The access token expired")
                .scope(ScopeSet::from_space_separated("calendar:read"))
                .render()
        })
    });
    group.bench_function("403-step-up", |b| {
        b.iter(|| {
            Challenge::new(black_box(metadata))
                .error(ErrorCode::InsufficientScope)
                .description("The token lacks scopes this operation needs")
                .scope(ScopeSet::from_space_separated(
                    "calendar:read calendar:write calendar:admin",
                ))
                .render()
        })
    });
    group.finish();
}

fn tool_name(c: &mut Criterion, s: &Setup) {
    let token = s.issuer.token(Alg::RS256);
    let layer = mcp_layer(&s.issuer, s.warm.clone());
    assert_eq!(through(&layer, get_mcp(&token)), 200);
    let mut group = c.benchmark_group("tool-name");
    group.bench_function("layer-GET", |b| {
        b.iter_batched(
            || get_mcp(&token),
            |request| through(&layer, request),
            BatchSize::SmallInput,
        )
    });
    for (label, size) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let body = Bytes::from(tools_call_body(size));
        assert_eq!(through(&layer, post_mcp(&token, body.clone())), 200);
        group.bench_function(format!("layer-POST-{label}"), |b| {
            b.iter_batched(
                || post_mcp(&token, body.clone()),
                |request| through(&layer, request),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("serde_json-{label}"), |b| {
            b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).is_ok())
        });
    }
    group.finish();
}

/// An allowed `tools/call` event as the layer records it: verified identity, scopes, tool,
/// fingerprint, address, generated request id.
fn audit_event() -> AuditEvent<'static> {
    let mut event = AuditEvent::new(
        Outcome::Allowed,
        audit::reason::ALLOWED,
        200,
        "6f1c0e8a9b2d4c7e6f1c0e8a9b2d4c7e",
    );
    event.http_method = "POST".into();
    event.issuer = Some("https://auth.example.com/realms/calendar".into());
    event.subject = Some("248289761001".into());
    event.client_id = Some("calendar-desktop-client".into());
    event.tools = vec!["list_events".into()].into();
    event.rpc_methods = vec!["tools/call".into()].into();
    event.required_scopes = Some(ScopeSet::from_space_separated("calendar:read"));
    event.granted_scopes = Some(ScopeSet::from_space_separated(
        "calendar:read calendar:write",
    ));
    event.fingerprint = Some(mcp_oauth::validation::TokenFingerprint::of("token"));
    event.scheme = Some("Bearer");
    event.remote_addr = Some(std::net::IpAddr::from([192, 168, 17, 42]));
    event
}

fn audit_sink_bench<W: std::io::Write + Send + 'static>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    sink: JsonLinesSink<W>,
    event: &AuditEvent<'_>,
) {
    group.bench_function(name, |b| b.iter(|| sink.record(black_box(event))));
    if sink.dropped() > 0 {
        eprintln!(
            "audit/{name}: {} events dropped (buffer full)",
            sink.dropped()
        );
    }
}

fn audit_events(c: &mut Criterion) {
    let event = audit_event();
    let mut group = c.benchmark_group("audit");
    group.bench_function("to_json-to_string", |b| {
        b.iter(|| {
            let mut line = black_box(&event).to_json().to_string();
            line.push('\n');
            line
        })
    });
    let mut line = Vec::with_capacity(1024);
    group.bench_function("write_json_line", |b| {
        b.iter(|| {
            line.clear();
            black_box(&event).write_json_line(&mut line);
            line.len()
        })
    });
    let devnull = || std::fs::OpenOptions::new().write(true).open("/dev/null");
    let path = std::env::temp_dir().join(format!(
        "mcp-oauth-bench-audit-{}.jsonl",
        std::process::id()
    ));
    let file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
    };
    audit_sink_bench(
        &mut group,
        "direct-io_sink",
        JsonLinesSink::new(std::io::sink()),
        &event,
    );
    audit_sink_bench(
        &mut group,
        "direct-dev_null",
        JsonLinesSink::new(devnull().expect("/dev/null")),
        &event,
    );
    audit_sink_bench(
        &mut group,
        "direct-file",
        JsonLinesSink::new(file().expect("temp file")),
        &event,
    );
    let non_blocking = |writer| JsonLinesSink::non_blocking(writer).expect("audit thread");
    audit_sink_bench(
        &mut group,
        "non_blocking-io_sink",
        non_blocking(Box::new(std::io::sink()) as Box<dyn std::io::Write + Send>),
        &event,
    );
    audit_sink_bench(
        &mut group,
        "non_blocking-dev_null",
        non_blocking(Box::new(devnull().expect("/dev/null"))),
        &event,
    );
    audit_sink_bench(
        &mut group,
        "non_blocking-file",
        non_blocking(Box::new(file().expect("temp file"))),
        &event,
    );
    group.finish();
    let _ = std::fs::remove_file(&path);
}

fn benches(c: &mut Criterion) {
    let s = setup();
    cold(c, &s);
    layer(c, &s);
    warm(c, &s);
    scaling(c, &s);
    keyset(c, &s);
    challenge(c);
    tool_name(c, &s);
    audit_events(c);
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = benches
}
criterion_main!(micro);
