//! Sessions on Redis, for servers that still keep them (protocol versions before
//! 2026-07-28): one hash per session, `{prefix}session:<SHA-256 of the id>`, holding the
//! principal the layer bound it to (`principal`) and rmcp's state for restoring it on another
//! replica (`state`, see [`RedisSessionStore`]). A session made on one replica then works on
//! every other, for its principal only.

use super::RedisState;
use super::replay::hex;
use crate::crypto::sha256;
use crate::http::{Principal, SessionBindings, SessionCheck};
use crate::store::StoreFuture;

impl RedisState {
    fn session_key(&self, session_id: &str) -> String {
        self.key(&format!("session:{}", hex(&sha256(session_id.as_bytes()))))
    }

    /// Sets one field of a session's hash (`principal` only if absent: a binding never
    /// changes owner) and (re)starts its time to live.
    async fn set_session_field(
        &self,
        session_id: &str,
        field: &'static str,
        value: Vec<u8>,
    ) -> Result<(), super::Unavailable> {
        let key = self.session_key(session_id);
        let ttl = self.inner.config.session_ttl.as_secs().max(1);
        let set = if field == "principal" {
            "HSETNX"
        } else {
            "HSET"
        };
        self.run("session", |mut connection| async move {
            ::redis::pipe()
                .cmd(set)
                .arg(&key)
                .arg(field)
                .arg(value)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }
}

impl SessionBindings for RedisState {
    fn bind<'a>(&'a self, session_id: &'a str, principal: Principal) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Known here at once; shared for the other replicas.
            self.inner.sessions.bind(session_id, principal).await;
            let owner = principal.as_bytes().to_vec();
            if let Err(error) = self.set_session_field(session_id, "principal", owner).await {
                tracing::warn!(
                    target: super::LOG_TARGET,
                    error = %error,
                    "a new session could not be shared: other replicas will refuse it until it is made again"
                );
            }
        })
    }

    fn check<'a>(
        &'a self,
        session_id: &'a str,
        principal: Principal,
    ) -> StoreFuture<'a, SessionCheck> {
        Box::pin(async move {
            // A binding never changes owner: what this replica has seen answers alone.
            match self.inner.sessions.check_now(session_id, principal) {
                SessionCheck::Unknown => {}
                known => return known,
            }
            let key = self.session_key(session_id);
            let owner = self
                .run("session", |mut connection| async move {
                    ::redis::cmd("HGET")
                        .arg(key)
                        .arg("principal")
                        .query_async::<Option<Vec<u8>>>(&mut connection)
                        .await
                })
                .await;
            match owner {
                Err(_) => SessionCheck::Unavailable,
                Ok(None) => SessionCheck::Unknown,
                Ok(Some(bytes)) => {
                    let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                        return SessionCheck::Unknown;
                    };
                    let owner = Principal::from_bytes(digest);
                    self.inner.sessions.bind(session_id, owner).await;
                    if owner == principal {
                        SessionCheck::Owner
                    } else {
                        SessionCheck::OtherPrincipal
                    }
                }
            }
        })
    }

    fn unbind<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.sessions.unbind(session_id).await;
            let key = self.session_key(session_id);
            let _ = self
                .run("session", |mut connection| async move {
                    ::redis::cmd("DEL")
                        .arg(key)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
        })
    }
}

/// The largest session state shared (a client's `initialize` parameters; a few hundred
/// bytes in practice): a client cannot fill Redis through them.
#[cfg(feature = "rmcp")]
pub const MAX_SHARED_SESSION_STATE: usize = 16 * 1024;

/// rmcp's session store on Redis (`StreamableHttpServerConfig::session_store`): a replica
/// that does not know a session restores it from the state stored here, replaying the
/// client's `initialize`. The layer's principal binding lives in the same hash and is checked
/// first, so a session is restored only for its principal.
#[cfg(feature = "rmcp")]
#[derive(Clone, Debug)]
pub struct RedisSessionStore(pub(crate) RedisState);

#[cfg(feature = "rmcp")]
impl RedisState {
    /// rmcp's session store, sharing this state's connection and session hashes.
    pub fn session_store(&self) -> RedisSessionStore {
        RedisSessionStore(self.clone())
    }
}

#[cfg(feature = "rmcp")]
mod rmcp_store {
    use rmcp::transport::streamable_http_server::session::store::{
        SessionState, SessionStore, SessionStoreError,
    };

    use super::{MAX_SHARED_SESSION_STATE, RedisSessionStore};

    fn error(why: impl std::fmt::Display) -> SessionStoreError {
        format!("the shared session store: {why}").into()
    }

    #[async_trait::async_trait]
    impl SessionStore for RedisSessionStore {
        async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
            let key = self.0.session_key(session_id);
            let state = self
                .0
                .run("session", |mut connection| async move {
                    ::redis::cmd("HGET")
                        .arg(key)
                        .arg("state")
                        .query_async::<Option<Vec<u8>>>(&mut connection)
                        .await
                })
                .await
                .map_err(error)?;
            state
                .map(|bytes| serde_json::from_slice(&bytes).map_err(error))
                .transpose()
        }

        async fn store(
            &self,
            session_id: &str,
            state: &SessionState,
        ) -> Result<(), SessionStoreError> {
            let json = serde_json::to_vec(state).map_err(error)?;
            if json.len() > MAX_SHARED_SESSION_STATE {
                // rmcp logs this and goes on: the session works on this replica only.
                return Err(error(format!(
                    "the session's initialize parameters ({} bytes) are larger than the {} \
                     bytes shared",
                    json.len(),
                    MAX_SHARED_SESSION_STATE
                )));
            }
            self.0
                .set_session_field(session_id, "state", json)
                .await
                .map_err(error)
        }

        async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
            let key = self.0.session_key(session_id);
            self.0
                .run("session", |mut connection| async move {
                    ::redis::cmd("DEL")
                        .arg(key)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await
                .map_err(error)
        }
    }
}
