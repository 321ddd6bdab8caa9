//! Introspection answers on Redis: `{prefix}introspect:<SHA-256 of the token>` holds the
//! endpoint's response body, expiring no later than the token (each replica judges it again).

use std::time::Duration;

use super::RedisState;
use super::replay::hex;
use crate::introspection::SharedIntrospectionCache;
use crate::store::StoreFuture;

impl SharedIntrospectionCache for RedisState {
    fn get<'a>(&'a self, token_hash: &'a [u8; 32]) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let key = self.key(&format!("introspect:{}", hex(token_hash)));
            self.run("introspection", |mut connection| async move {
                ::redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<Vec<u8>>>(&mut connection)
                    .await
            })
            .await
            .ok()
            .flatten()
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
                .run("introspection", |mut connection| async move {
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
