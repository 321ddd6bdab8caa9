//! What the stores behind the crate's traits have in common (rate limits, session bindings,
//! shared introspection answers, revocations): they may answer over the network, so their
//! methods return a boxed future rather than block a worker thread.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, as the store traits return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
