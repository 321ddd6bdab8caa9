//! Introspection answers on Redis: `{prefix}introspect:<SHA-256 of the token>` holds the
//! endpoint's response body, expiring no later than the token (each replica judges it again).

use std::time::Duration;

use super::RedisState;
use super::replay::hex;
use crate::introspection::SharedIntrospectionCache;
use crate::store::StoreFuture;

impl SharedIntrospectionCache for RedisState {
    fn get<'a>(&'a self, token_hash: &'a [u8; 32]) -> StoreFuture<'a, Option<(Vec<u8>, Duration)>> {
        Box::pin(async move {
            let key = self.key(&format!("introspect:{}", hex(token_hash)));
            let (body, left) = self
                .run_best_effort("introspection", |mut connection| async move {
                    ::redis::pipe()
                        .cmd("GET")
                        .arg(&key)
                        .cmd("PTTL")
                        .arg(&key)
                        .query_async::<(Option<Vec<u8>>, i64)>(&mut connection)
                        .await
                })
                .await
                .ok()?;
            // PTTL is negative for a key without expiry or gone: not an answer to keep.
            let left = u64::try_from(left).ok().filter(|ms| *ms > 0)?;
            Some((body?, Duration::from_millis(left)))
        })
    }

    fn put<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
        body: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            if millis == 0 {
                return;
            }
            let key = self.key(&format!("introspect:{}", hex(token_hash)));
            let _ = self
                .run_best_effort("introspection", |mut connection| async move {
                    ::redis::cmd("SET")
                        .arg(key)
                        .arg(body)
                        .arg("PX")
                        .arg(millis)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
        })
    }
}
