//! The fuzz targets on stable, without libFuzzer: every seed (`seeds/<target>/`), every saved
//! regression input (`regressions/<target>/`), every named reproducer of a finding
//! (`artifacts/<target>/F*`) and, when present, the local corpus (`corpus/<target>/`, not in
//! git) runs through the same `run` function libFuzzer calls.
//! Plus a few checks that the harness reaches what it is meant to reach.
//!
//! `cargo test --no-default-features` (no libFuzzer build needed).

use std::path::Path;
use std::time::Duration;

use mcp_oauth_fuzz::oracle::{T0, validate_everywhere};
use mcp_oauth_fuzz::{bearer, challenge, dpop, jsonrpc, token, token_raw};

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["seeds", "regressions", "artifacts", "corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        paths.sort();
        // In artifacts/, only the named reproducers of FUZZING.md's findings (`F<n>-…`);
        // libFuzzer's fresh `crash-…` files there are for `cargo fuzz run` to replay.
        let named = |p: &Path| {
            dir != "artifacts"
                || p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('F'))
        };
        for path in paths.into_iter().filter(|p| p.is_file() && named(p)) {
            let data = std::fs::read(&path).expect("readable input");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no input for {target}");
    println!("{target}: {count} inputs");
}

#[test]
fn token_inputs() {
    replay("token", token::run);
}

#[test]
fn dpop_inputs() {
    replay("dpop", dpop::run);
}

/// The signed seed reaches the end of the verifier: the mutations start from an accepted proof.
#[test]
fn the_signed_dpop_seed_is_accepted() {
    let seed = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/dpop/valid"))
        .expect("seed");
    let rest = &seed[1..];
    let split = rest
        .iter()
        .position(|&b| b == b'\n')
        .expect("header and claims");
    let proof = dpop::signed(&rest[..split], &rest[split + 1..]);
    let accepted = mcp_oauth::__fuzz::dpop_proof(&proof, dpop::TOKEN, dpop::NOW);
    assert!(accepted.is_ok(), "{accepted:?}");
}

#[test]
fn token_raw_inputs() {
    replay("token_raw", token_raw::run);
}

#[test]
fn bearer_inputs() {
    replay("bearer", bearer::run);
}

#[test]
fn jsonrpc_inputs() {
    replay("jsonrpc", jsonrpc::run);
}

#[test]
fn challenge_inputs() {
    replay("challenge", challenge::run);
}

/// Input bytes choosing signer `byte` and every other default.
fn signer_input(byte: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, byte]
}

#[test]
fn the_empty_input_is_a_valid_token_and_every_trusted_key_signs_valid_ones() {
    for (byte, valid) in [
        (0, true),    // A, Ed25519
        (100, true),  // A, P-256 without kid
        (255, true),  // A, RSA
        (140, true),  // B, Ed25519 (same kid as A's)
        (180, true),  // B, P-256
        (200, false), // untrusted Ed25519 claiming A's kid
        (230, false), // HS256 keyed with A's public key
    ] {
        let (token, now1, now2) = token::build(&signer_input(byte)).expect("an input");
        assert_eq!(now1, Duration::from_secs(T0));
        assert_eq!(now2, now1);
        assert_eq!(
            validate_everywhere(&token, now1, now2),
            [valid, valid],
            "signer byte {byte}"
        );
    }
    let (token, ..) = token::build(&[]).expect("an input");
    assert_eq!(
        validate_everywhere(
            &token,
            Duration::from_secs(T0),
            Duration::from_secs(T0 + 7200)
        ),
        [true, false],
        "expired two hours later, with and without the cache"
    );
}

/// Writes the seed corpora (run once by hand: `cargo test --no-default-features -- --ignored`).
#[test]
#[ignore = "writes seeds/; run by hand when the harness's input format changes"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    for byte in [0u8, 100, 140, 180, 200, 230, 255] {
        write("token", &format!("signer-{byte}"), &signer_input(byte));
        let (token, ..) = token::build(&signer_input(byte)).unwrap();
        write("token_raw", &format!("signer-{byte}.jwt"), token.as_bytes());
    }
    write("token", "empty", b"");
    write("token_raw", "five-segments", b"a.b.c.d.e");
    for (name, value) in [
        ("bearer", "Bearer abc.def.ghi"),
        ("bearer-padded", "bEaReR   YWJj=="),
        ("basic", "Basic dXNlcjpwYXNz"),
        ("two-headers", "Bearer a\nBearer b"),
        ("empty-bearer", "Bearer "),
        ("dpop", "DPoP abc"),
        ("tab", "Bearer\tabc"),
    ] {
        write("bearer", name, value.as_bytes());
    }
    for (name, body) in [
        (
            "call",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_event","arguments":{}}}"#,
        ),
        (
            "batch",
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list"}},{"jsonrpc":"2.0","method":"notifications/progress","params":{}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete"}}]"#,
        ),
        (
            "escapes",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"del\u0065te"}}"#,
        ),
        (
            "duplicate",
            r#"{"method":"tools/call","params":{"name":"list","name":"delete"}}"#,
        ),
        ("response", r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        ("list", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
        ("base64-name", "=?base64?w6l2w6luZW1lbnQ=?="),
    ] {
        write("jsonrpc", name, body.as_bytes());
    }
    write("challenge", "empty", b"");
    write(
        "challenge",
        "text",
        b"\x01\x00\x00\x00https://mcp.example.com/.well-known/oauth-protected-resource/mcp\x00",
    );
}

#[test]
fn bearer_values_are_replayed_as_headers() {
    bearer::run(b"Bearer abc\nBearer def");
    bearer::run(b"Bearer \xff");
    token_raw::run(b"");
    jsonrpc::run(b"");
    challenge::run(b"");
}

/// Prints the token an input of the `token` target builds, its header and claims, and the
/// validators' answers: `FUZZ_INPUT=artifacts/token/crash-… cargo test --no-default-features
/// show_token -- --ignored --nocapture`.
#[test]
#[ignore = "a debugging aid: needs FUZZ_INPUT"]
fn show_token() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let path = std::env::var("FUZZ_INPUT").expect("FUZZ_INPUT names an input file");
    let data = std::fs::read(path).expect("readable input");
    let (token, now1, now2) = token::build(&data).expect("an input");
    println!("token: {token}\ntimes: {now1:?} {now2:?}");
    for segment in token.split('.').take(2) {
        if let Ok(bytes) = URL_SAFE_NO_PAD.decode(segment) {
            println!("segment: {}", String::from_utf8_lossy(&bytes));
        }
    }
    let v = &*mcp_oauth_fuzz::oracle::VALIDATORS;
    v.clock.set(now1);
    println!(
        "without cache: {:?}",
        mcp_oauth_fuzz::ready(v.plain.validate(&token))
    );
}

/// The rmcp differential of the `jsonrpc` target is not vacuous: rmcp reads the seed call as
/// a call of its tool.
#[test]
fn rmcp_reads_the_seed_call_as_a_tool_call() {
    use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
    let body = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/jsonrpc/call"))
        .expect("seed");
    let Ok(ClientJsonRpcMessage::Request(request)) =
        serde_json::from_slice::<ClientJsonRpcMessage>(&body)
    else {
        panic!("rmcp does not read the seed as a request");
    };
    let ClientRequest::CallToolRequest(call) = &request.request else {
        panic!("not a tool call: {:?}", request.request.method());
    };
    assert_eq!(call.params.name, "create_event");
}
