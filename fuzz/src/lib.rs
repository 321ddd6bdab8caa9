//! The bodies of mcp-oauth's fuzz targets (FUZZING.md).
//!
//! Each target module has `run(data: &[u8])`: it never returns an error, it panics when an
//! invariant breaks, so libFuzzer reports the input as a crash. The `fuzz_targets/` binaries
//! are one line each; `tests/replay.rs` runs the seed corpora and saved regression inputs
//! through the same functions on stable, without libFuzzer.
//!
//! | target | what it drives | invariants |
//! |---|---|---|
//! | [`token`] | `Validator::validate` on tokens the harness builds and signs with fixed test keys | no panic; an accepted token passes an independent re-check (issuer, audience, times, typ, header, the signature under a key of that issuer, the identity's fields); with and without the token cache, the same answer |
//! | [`token_raw`] | `Validator::validate` on the raw input as the token | same |
//! | [`bearer`] | the `Authorization` header parser | no panic; the answer of an independent model of RFC 6750 §2.1 |
//! | [`jsonrpc`] | the JSON-RPC tool-name extraction and `Mcp-Name` decoding | no panic; agrees with `serde_json`'s own parse of the body both ways |
//! | [`challenge`] | `Challenge::render` and `challenge::parse` | the rendered header parses back to the same parameters, sanitized as documented |

pub mod bearer;
pub mod challenge;
pub mod dpop;
pub mod json;
pub mod jsonrpc;
pub mod keys;
pub mod oracle;
pub mod token;
pub mod token_raw;

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Polls `future` once. With a static key set `Validator::validate` never waits (nothing is
/// fetched, no lock is contended), so a pending future is itself a broken invariant.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future is pending although nothing can be awaited"),
    }
}
