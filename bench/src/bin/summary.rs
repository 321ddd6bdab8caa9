//! Prints the medians of the last criterion run (`<target>/criterion/*/*/new/estimates.json`)
//! and the load generator's reports (`<target>/mcp-oauth-bench/*.json`) as Markdown tables,
//! with each ratio next to its target. Targets are reported, never asserted.
//!
//! ```sh
//! CARGO_TARGET_DIR=$PWD/target/bench cargo run -p mcp-oauth-bench --release --bin summary
//! ```

use std::path::Path;

use mcp_oauth_bench::{Alg, report_dir, target_dir};
use serde_json::Value;

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The median (ns) of criterion benchmark `group/function`, if it ran.
fn median(group: &str, function: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    read_json(&path)?["median"]["point_estimate"].as_f64()
}

fn time(ns: Option<f64>) -> String {
    match ns {
        None => "–".into(),
        Some(ns) if ns < 1_000.0 => format!("{ns:.0} ns"),
        Some(ns) if ns < 1_000_000.0 => format!("{:.2} µs", ns / 1_000.0),
        Some(ns) => format!("{:.2} ms", ns / 1_000_000.0),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("–".into(), |r| format!("{r:.2}×"))
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn paired_section() {
    let Some(p) = read_json(&report_dir().join("paired.json")) else {
        println!("(no paired report: run `loadgen paired`)\n");
        return;
    };
    let us = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |ns| format!("{:.2} µs", ns / 1e3))
    };
    println!(
        "Paired and interleaved ({} rounds × {} ms of thread CPU per contender), on thread CPU time \
         (`CLOCK_THREAD_CPUTIME_ID`): medians, and medians of the per-round ratios.\n",
        p["config"]["rounds"], p["config"]["budget_ms"]
    );
    println!(
        "| cold validation | mcp-oauth | floor | jsonwebtoken | jwt-authorizer | ours ÷ floor (≤ 1.10×) | jsonwebtoken ÷ ours (≥ 1×) | jwt-authorizer ÷ ours (> 1×) | mcp-oauth layer | tower-oauth2 layer | tower-oauth2 ÷ ours (> 1×) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for alg in Alg::ALL {
        let a = &p[alg.name()];
        let r = |key: &str, ok: fn(f64) -> bool| {
            a[key].as_f64().map_or("–".into(), |r| {
                format!("{r:.3}× {}", verdict(Some(ok(r))))
            })
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            alg.name(),
            us(&a["mcp_oauth_ns"]),
            us(&a["floor_ns"]),
            us(&a["jsonwebtoken_ns"]),
            us(&a["jwt_authorizer_ns"]),
            r("over_floor", |r| r <= 1.10),
            r("jsonwebtoken_over_ours", |r| r >= 1.0),
            r("jwt_authorizer_over_ours", |r| r > 1.0),
            us(&a["mcp_oauth_layer_ns"]),
            us(&a["tower_oauth2_layer_ns"]),
            r("tower_oauth2_over_ours_layer", |r| r > 1.0),
        );
    }
    let hit = p["warm_hit_ns"].as_f64();
    println!(
        "\nWarm hit (1 KiB token, thread CPU): {} — target ≤ 1 µs: {}.\n",
        us(&p["warm_hit_ns"]),
        verdict(hit.map(|ns| ns <= 1_000.0))
    );
    println!(
        "| RS256 cold on 1 vs 2 threads | wall/op 1 t | wall/op 2 t | wall scaling (≥ 1.9×) | CPU/op 1 t | CPU/op 2 t | CPU scaling | CPU the 2 threads got |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    if let Some(scaling) = p["scaling_RS256"].as_object() {
        for (name, v) in scaling {
            let x = |key: &str| v[key].as_f64().map_or("–".into(), |r| format!("{r:.2}×"));
            println!(
                "| {name} | {} | {} | {} | {} | {} | {} | {:.0} % of 2 cores |",
                us(&v["wall_1t_ns"]),
                us(&v["wall_2t_ns"]),
                x("wall_scaling"),
                us(&v["cpu_1t_ns"]),
                us(&v["cpu_2t_ns"]),
                x("cpu_scaling"),
                v["cpu_share_2t"].as_f64().unwrap_or(f64::NAN) * 100.0
            );
        }
    }
    println!();
}

/// `loadgen dpop`: DPoP (token + proof) against the two bare verifications.
fn dpop_section() {
    let Some(d) = read_json(&report_dir().join("dpop.json")) else {
        println!("(no DPoP report: run `loadgen dpop`)\n");
        return;
    };
    let us = |v: &Value| {
        v.as_f64()
            .map_or("–".into(), |ns| format!("{:.2} µs", ns / 1e3))
    };
    println!(
        "DPoP ({} rounds × {} ms of thread CPU per contender, {} proofs from a pool of distinct ones, \
         the proofs' floor over the same pool):\n",
        d["config"]["rounds"],
        d["config"]["budget_ms"],
        d["config"]["proof_alg"].as_str().unwrap_or("?")
    );
    println!(
        "| token alg | DPoP, token cache off | DPoP, cache on | bearer, cache off | floor: token + proof | DPoP cold ÷ floors (≤ 1.15×) | DPoP cold ÷ bearer cold | DPoP warm ÷ proof floor |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for alg in ["RS256", "ES256"] {
        let a = &d[alg];
        let r = |key: &str| a[key].as_f64().map_or("–".into(), |r| format!("{r:.3}×"));
        let target = a["over_floors"].as_f64().map(|r| r <= 1.15);
        println!(
            "| {alg} | {} | {} | {} | {} | {} {} | {} | {} |",
            us(&a["dpop_cold_ns"]),
            us(&a["dpop_warm_ns"]),
            us(&a["bearer_cold_ns"]),
            us(&a["floors_ns"]),
            r("over_floors"),
            verdict(target),
            r("over_bearer"),
            r("warm_over_proof_floor"),
        );
    }
    println!();
}

/// Redis commands per operation, from a `calls_per_op` map: `EVALSHA 1.00, GET 1.00, …`.
fn commands(calls: &Value) -> String {
    let listed: Vec<String> = calls
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(command, per)| {
            let per = per.as_f64()?;
            (per >= 0.005).then(|| format!("{} {per:.2}", command.to_uppercase()))
        })
        .collect();
    if listed.is_empty() {
        "none".into()
    } else {
        listed.join(", ")
    }
}

/// `loadgen redis`: the stores on Redis against the in-memory ones, key sizes, end to end.
fn redis_section() {
    println!("\n## Shared state on Redis\n");
    let Some(r) = read_json(&report_dir().join("redis.json")) else {
        println!("(no Redis report: run `loadgen redis`)");
        return;
    };
    let us = |v: &Value| v.as_f64().map_or("–".into(), |us| format!("{us:.2} µs"));
    let ops_order = [
        ("acquire", "per-principal `acquire`"),
        (
            "gate_success",
            "failed-auth gate, token verifies (`reserve` + `settle(false)`)",
        ),
        (
            "gate_failure",
            "failed-auth gate, failure (`reserve` + `settle(true)`)",
        ),
        ("remember", "DPoP replay `remember`"),
        (
            "session_seen",
            "session check, session seen by this replica",
        ),
        (
            "session_unseen",
            "session check, session made on another replica",
        ),
    ];
    if let Some(stores) = r.get("stores") {
        let config = &stores["config"];
        println!(
            "redis-server {} on loopback, one multiplexed connection (redis-rs); {} rounds, \
             interleaved; per contender and round {} operations that ask Redis at concurrency 1 \
             and {} at 64, {} local ones; medians over rounds. In-memory baseline of both session \
             rows: the in-memory check of a known session. Redis commands per op as Redis counts \
             them (`INFO commandstats`): a script's own `GET`, `SET`, `TIME` are counted besides \
             its `EVALSHA`, which is the one round trip. Client CPU: the benchmark thread's (a \
             current-thread runtime, the connection's task included); Redis CPU: the server's \
             `used_cpu_sys` + `used_cpu_user`.\n",
            r["redis_version"].as_str().unwrap_or("?"),
            config["rounds"],
            config["ops_c1"],
            config["ops_c64"],
            config["local_ops"]
        );
        println!(
            "| concurrency 1 | Redis commands per op | in-memory | Redis | Redis − in-memory | Redis ÷ in-memory | Redis p50 / p99 | client CPU per op, in-memory → Redis | Redis CPU per op |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (key, label) in ops_order {
            let o = &stores["c1"][key];
            let (m, x) = (&o["memory"], &o["redis"]);
            let latency = if x["p50_us"].is_null() {
                "–".to_owned()
            } else {
                format!("{} / {}", us(&x["p50_us"]), us(&x["p99_us"]))
            };
            println!(
                "| {label} | {} | {} | {} | {} | {} | {latency} | {} → {} | {} |",
                commands(&x["calls_per_op"]),
                us(&m["wall_us"]),
                us(&x["wall_us"]),
                us(&o["redis_minus_memory_us"]),
                o["redis_over_memory"]
                    .as_f64()
                    .map_or("–".into(), |r| format!("{r:.1}×")),
                us(&m["client_cpu_us"]),
                us(&x["client_cpu_us"]),
                us(&x["redis_cpu_us"]),
            );
        }
        println!(
            "\n| concurrency 64 | in-memory wall per op | Redis wall per op | Redis ops/s | Redis p50 / p99 | client CPU per op, in-memory → Redis | Redis CPU per op |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (key, label) in ops_order {
            let o = &stores["c64"][key];
            let (m, x) = (&o["memory"], &o["redis"]);
            let latency = if x["p50_us"].is_null() {
                "–".to_owned()
            } else {
                format!("{} / {}", us(&x["p50_us"]), us(&x["p99_us"]))
            };
            println!(
                "| {label} | {} | {} | {:.0} | {latency} | {} → {} | {} |",
                us(&m["wall_us"]),
                us(&x["wall_us"]),
                x["ops_per_s"].as_f64().unwrap_or(f64::NAN),
                us(&m["client_cpu_us"]),
                us(&x["client_cpu_us"]),
                us(&x["redis_cpu_us"]),
            );
        }
    }
    if let Some(memory) = r.get("key_memory") {
        println!(
            "\n| key (one per …) | example | `MEMORY USAGE` | server memory per key (`used_memory` growth ÷ keys) |"
        );
        println!("|---|---|---|---|");
        for (key, label) in [
            ("bucket", "rate-limit bucket (principal or address)"),
            ("replay", "DPoP proof id"),
            ("session", "session binding (hash, `principal` field)"),
        ] {
            let k = &memory[key];
            let example = k["example_key"].as_str().unwrap_or("?");
            // `prefix:kind:` and the digest's length, not the digest.
            let shape = match example.rsplit_once(':') {
                Some((head, digest)) => format!("`{head}:<{} hex>`", digest.len()),
                None => format!("`{example}`"),
            };
            println!(
                "| {label} | {shape} | {} B | {:.0} B over {} keys |",
                k["memory_usage"],
                k["used_memory_per_key"].as_f64().unwrap_or(f64::NAN),
                k["count"]
            );
        }
    }
    if let Some(e2e) = r.get("e2e") {
        let config = &e2e["config"];
        println!(
            "\nEnd to end, `tools/call` (`list_events`) over loopback, {} connections, {} rounds of \
             {} s per variant, interleaved, {} distinct RS256 tokens (as many principals), token \
             cache on, server and client on 1 thread each; both guarded variants with \
             `{}`.\n",
            config["concurrency"],
            config["rounds"],
            config["seconds"],
            config["tokens"],
            config["budget"].as_str().unwrap_or("?")
        );
        println!(
            "| variant | req/s | p50 | p99 | ÷ unguarded | ÷ guarded in-memory | server CPU per request | Redis CPU per request | Redis commands per request | unguarded CPU ÷ this (server; server + Redis) | guarded in-memory server CPU ÷ this |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for key in ["unguarded", "guarded_memory", "guarded_redis"] {
            let v = &e2e[key];
            let f = |name: &str| v[name].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {} | {:.0} | {:.0} µs | {:.0} µs | {:.3}× | {:.3}× | {:.1} µs | {:.2} µs | {} | {:.3}×; {:.3}× | {:.3}× |",
                v["label"].as_str().unwrap_or(key),
                f("rps"),
                f("p50_us"),
                f("p99_us"),
                f("over_unguarded"),
                f("over_memory"),
                f("server_cpu_us_per_request"),
                f("redis_cpu_us_per_request"),
                commands(&v["redis_calls_per_request"]),
                f("cpu_ratio"),
                f("cpu_ratio_with_redis"),
                f("cpu_ratio_vs_memory"),
            );
        }
    }
}

fn main() {
    println!("## Ratios judged against the targets\n");
    paired_section();
    dpop_section();
    println!("## Micro-benchmarks (criterion medians, wall clock)\n");
    println!(
        "Wall clock moves with the machine's load; the per-validation verdicts are taken from the \
         paired table above. Within each group all contenders ran in the same run.\n"
    );
    println!(
        "| cold validation | mcp-oauth | floor (aws-lc-rs) | jsonwebtoken | jwt-authorizer | mcp-oauth ÷ floor | jsonwebtoken ÷ mcp-oauth | jwt-authorizer ÷ mcp-oauth |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for alg in Alg::ALL {
        let group = format!("cold-{}", alg.name());
        let ours = median(&group, "mcp-oauth");
        let floor = median(&group, "floor");
        let jwt = median(&group, "jsonwebtoken");
        let authorizer = median(&group, "jwt-authorizer");
        let over_floor = div(ours, floor);
        let vs_jwt = div(jwt, ours);
        let vs_authorizer = div(authorizer, ours);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            alg.name(),
            time(ours),
            time(floor),
            time(jwt),
            time(authorizer),
            ratio(over_floor),
            ratio(vs_jwt),
            ratio(vs_authorizer),
        );
    }

    println!(
        "\n| through a tower layer (`GET /mcp`, cache off) | mcp-oauth | tower-oauth2-resource-server | theirs ÷ ours |"
    );
    println!("|---|---|---|---|");
    for alg in Alg::ALL {
        let group = format!("layer-{}", alg.name());
        let ours = median(&group, "mcp-oauth");
        let theirs = median(&group, "tower-oauth2-resource-server");
        let r = div(theirs, ours);
        println!(
            "| {} | {} | {} | {} |",
            alg.name(),
            time(ours),
            time(theirs),
            ratio(r)
        );
    }

    println!("\n| warm (verified-token cache hit) | median | target |");
    println!("|---|---|---|");
    let hit = median("warm", "validate-1KiB");
    println!(
        "| `Validator::validate`, 1 KiB token | {} | ≤ 1 µs: {} |",
        time(hit),
        verdict(hit.map(|ns| ns <= 1_000.0))
    );
    println!(
        "| whole layer, `GET /mcp`, 1 KiB token | {} | (reported) |",
        time(median("warm", "layer-GET-1KiB"))
    );

    println!(
        "\n| RS256 cold validation on 1 and 2 threads (time per validation per thread) | 1 thread | 2 threads | scaling 2·t₁/t₂ (target ≥ 1.9×) |"
    );
    println!("|---|---|---|---|");
    for who in ["mcp-oauth", "jsonwebtoken", "jwt-authorizer"] {
        let one = median("scaling-RS256", &format!("{who}-1t"));
        let two = median("scaling-RS256", &format!("{who}-2t"));
        let scaling = div(one, two).map(|r| 2.0 * r);
        let target = if who == "mcp-oauth" {
            format!(" {}", verdict(scaling.map(|s| s >= 1.9)))
        } else {
            String::new()
        };
        println!(
            "| {who} | {} | {} | {}{target} |",
            time(one),
            time(two),
            ratio(scaling)
        );
    }
    let one = median("keyset", "key_for-1t");
    let two = median("keyset", "key_for-2t");
    println!(
        "| key-set lookup (`RemoteKeySet::key_for`) | {} | {} | {} |",
        time(one),
        time(two),
        ratio(div(one, two).map(|r| 2.0 * r))
    );

    println!("\n| challenge rendering | median |");
    println!("|---|---|");
    for name in ["401-discovery", "401-invalid_token", "403-step-up"] {
        println!("| {name} | {} |", time(median("challenge", name)));
    }

    println!(
        "\n| tool-name extraction (through the layer, token cached) | median | minus `GET` (body read + JSON-RPC scan) | one `serde_json` pass over the body |"
    );
    println!("|---|---|---|---|");
    let get = median("tool-name", "layer-GET");
    println!("| `GET /mcp` (no body) | {} | – | – |", time(get));
    for size in ["1KiB", "64KiB"] {
        let post = median("tool-name", &format!("layer-POST-{size}"));
        let serde = median("tool-name", &format!("serde_json-{size}"));
        println!(
            "| `POST` `tools/call`, {size} body | {} | {} | {} |",
            time(post),
            time(post.zip(get).map(|(p, g)| p - g)),
            time(serde)
        );
    }

    let dir = report_dir();
    println!("\n## End to end\n");
    match read_json(&dir.join("e2e.json")) {
        Some(e2e) => {
            let config = &e2e["config"];
            println!(
                "`tools/call` (`list_events`) over loopback, {} connections, {} rounds of {} s per variant, \
                 {} distinct RS256 tokens of {} bytes, server on {} thread(s), client on {} thread(s).\n",
                config["concurrency"],
                config["rounds"],
                config["seconds"],
                config["tokens"],
                config["token_bytes"],
                config["server_threads"],
                config["client_threads"]
            );
            println!(
                "| variant | req/s | p50 | p99 | ÷ unguarded | server CPU per request | unguarded CPU ÷ this | target |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            for (key, label, target) in [
                ("unguarded", "unguarded", ""),
                ("guarded_cache_on", "guarded, token cache on", "≥ 0.95×"),
                (
                    "guarded_cache_off",
                    "guarded, token cache off",
                    "(reported)",
                ),
            ] {
                let v = &e2e[key];
                let r = v["ratio"].as_f64();
                let target = if target == "≥ 0.95×" {
                    format!("≥ 0.95×: {}", verdict(r.map(|r| r >= 0.95)))
                } else {
                    target.to_owned()
                };
                println!(
                    "| {label} | {:.0} | {:.0} µs | {:.0} µs | {} | {:.1} µs | {} | {target} |",
                    v["rps"].as_f64().unwrap_or(f64::NAN),
                    v["p50_us"].as_f64().unwrap_or(f64::NAN),
                    v["p99_us"].as_f64().unwrap_or(f64::NAN),
                    ratio(r),
                    v["server_cpu_us_per_request"].as_f64().unwrap_or(f64::NAN),
                    ratio(v["cpu_ratio"].as_f64())
                );
            }
        }
        None => println!("(no e2e report: run `loadgen e2e`)"),
    }
    match read_json(&dir.join("unknown_kid.json")) {
        Some(u) => {
            let fetches = u["fetches"].as_u64();
            println!(
                "\n{} concurrent validations naming an unknown kid: {} fetch(es), {} accepted (target: exactly one fetch: {}).",
                u["tasks"],
                fetches.map_or("–".into(), |f| f.to_string()),
                u["accepted"],
                verdict(fetches.map(|f| f == 1))
            );
        }
        None => println!("\n(no unknown-kid report: run `loadgen unknown-kid`)"),
    }

    println!("\n## Memory of the example\n");
    match read_json(&dir.join("memory.json")) {
        Some(m) => {
            let mib = |v: &Value| v.as_f64().map_or(f64::NAN, |k| k / 1024.0);
            println!("| distinct tokens served | RSS | peak RSS |");
            println!("|---|---|---|");
            if let Some(samples) = m["samples"].as_array() {
                for s in samples {
                    println!(
                        "| {} | {:.1} MiB | {:.1} MiB |",
                        s["tokens"],
                        mib(&s["rss_kib"]),
                        mib(&s["hwm_kib"])
                    );
                }
            }
            println!(
                "| then 20,000 of them again | {:.1} MiB | {:.1} MiB |",
                mib(&m["after_repeat_rss_kib"]),
                mib(&m["peak_kib"])
            );
        }
        None => println!("(no memory report: run `loadgen memory --example …`)"),
    }
    redis_section();
}
