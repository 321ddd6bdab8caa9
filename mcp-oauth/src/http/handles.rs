//! State handles bound to the principal that created them: SSE event ids and task ids.
//!
//! A state handle (an event id a client resumes from, a task id it polls) is not a
//! credential (MCP 2026-07-28, SEP-2567/2575): it must never let one principal reach what
//! another created. rmcp keys both by id alone: with an event store, `Last-Event-ID` replays
//! whatever stream the id names, with or without a session, and its task managers look a
//! task up by id. So every handle crosses the layer *sealed*: `<id>.<tag>`, the tag a MAC of
//! the principal and the id under a key of the layer. The layer seals the `id:` fields of the
//! event streams it passes to a principal, and opens `Last-Event-ID` and the `taskId` of
//! `tasks/get|update|cancel` for the principal presenting them; a handle that does not open
//! (another principal's, forged, or never sealed) reaches the server as an id it cannot know,
//! so the answer is the server's own answer for an unknown stream or task.
//!
//! The check is stateless: replicas configured with the same key
//! ([`OAuthLayerBuilder::handle_key`](super::OAuthLayerBuilder::handle_key)) accept each
//! other's handles. Task ids are minted by the server, so its tools seal them with the
//! [`TaskIds`] the layer puts in each request's extensions.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use http_body::{Body as HttpBody, Frame, SizeHint};
use sha2::Sha256;

use super::session::Principal;

/// Bytes of MAC a sealed handle carries (128 bits).
const TAG_BYTES: usize = 16;
/// What a sealed handle carries after its id: `.` and the tag in unpadded base64url.
const TAG_CHARS: usize = 22;
/// What the server is given for a task id that did not open: none of the presented text (a
/// store that parsed a prefix of it could otherwise find another principal's task), and no
/// task id any server issues.
const UNBOUND_TASK: &str = "mcp-oauth:unbound-task-id";

/// Which kind of handle a MAC covers, so that a sealed event id never opens as a task id
/// and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleKind {
    /// An SSE event id (`Last-Event-ID`).
    Event,
    /// A task id (`tasks/get|update|cancel`).
    Task,
}

impl HandleKind {
    fn label(self) -> &'static [u8] {
        match self {
            HandleKind::Event => b"mcp-oauth event id\0",
            HandleKind::Task => b"mcp-oauth task id\0",
        }
    }
}

/// The key that seals state handles. Random per process by default; replicas behind one
/// load balancer share one (32 random bytes from a secret store).
#[derive(Clone)]
pub(crate) struct HandleKey(Arc<[u8; 32]>);

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(..)")
    }
}

impl HandleKey {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self(Arc::new(key))
    }

    pub(crate) fn random() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self::new(key)
    }

    fn mac(&self, kind: HandleKind, principal: Principal, id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("any key length");
        mac.update(kind.label());
        mac.update(principal.as_bytes());
        mac.update(id.as_bytes());
        mac
    }

    /// `<id>.<tag>`.
    pub(crate) fn seal(&self, kind: HandleKind, principal: Principal, id: &str) -> String {
        let tag = self.mac(kind, principal, id).finalize().into_bytes();
        let mut sealed = String::with_capacity(id.len() + 1 + TAG_CHARS);
        sealed.push_str(id);
        sealed.push('.');
        URL_SAFE_NO_PAD.encode_string(&tag[..TAG_BYTES], &mut sealed);
        sealed
    }

    /// The id inside `sealed`, when it was sealed for `principal` under this key.
    pub(crate) fn open<'s>(
        &self,
        kind: HandleKind,
        principal: Principal,
        sealed: &'s str,
    ) -> Option<&'s str> {
        let (id, tag) = sealed.rsplit_once('.')?;
        if tag.len() != TAG_CHARS {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(kind, principal, id)
            .verify_truncated_left(&tag)
            .ok()
            .map(|()| id)
    }

    /// What the server is given for a presented task id: the id it sealed, or (not sealed
    /// for this principal) an id that names nothing it issued.
    pub(crate) fn unseal_or_spoil(&self, principal: Option<Principal>, presented: &str) -> String {
        match principal.and_then(|p| self.open(HandleKind::Task, p, presented)) {
            Some(id) => id.to_owned(),
            None => UNBOUND_TASK.to_owned(),
        }
    }
}

/// Seals the task ids the server creates for this request's principal: put the sealed id
/// in the `CreateTaskResult` (and wherever the task is named to the client). The layer
/// inserts it in the request extensions of every allowed request whose token names a
/// subject or client; with rmcp, [`crate::rmcp::task_ids`] reads it from a request context.
///
/// A `tasks/get`, `tasks/update` or `tasks/cancel` reaches the server with the id it
/// sealed when the caller is the principal it was sealed for, and with an id that names no
/// task otherwise: the server answers as for an unknown task.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use mcp_oauth::http::TaskIds;
/// fn create_task(task_ids: &TaskIds, task_manager_id: &str) -> String {
///     task_ids.seal(task_manager_id) // hand this to the client
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TaskIds {
    key: HandleKey,
    principal: Principal,
}

impl TaskIds {
    pub(crate) fn new(key: HandleKey, principal: Principal) -> Self {
        Self { key, principal }
    }

    /// The id to give the client for the server's task `task_id`.
    pub fn seal(&self, task_id: &str) -> String {
        self.key.seal(HandleKind::Task, self.principal, task_id)
    }
}

/// Whether a response is an event stream (its `id:` fields are sealed on the way out).
pub(crate) fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
        })
}

/// An event-stream body whose `id:` fields are sealed for one principal. Lines are passed
/// through byte for byte otherwise; a line cut between two frames is held until it ends.
pub(crate) struct SealedEventIds<B> {
    inner: B,
    key: HandleKey,
    principal: Principal,
    /// The start of a line whose end has not arrived yet.
    partial: BytesMut,
    /// Trailers that arrived after an unterminated line, sent after it.
    trailers: Option<Frame<Bytes>>,
    done: bool,
}

impl<B> SealedEventIds<B> {
    pub(crate) fn new(inner: B, key: HandleKey, principal: Principal) -> Self {
        Self {
            inner,
            key,
            principal,
            partial: BytesMut::new(),
            trailers: None,
            done: false,
        }
    }

    /// Rewrites the complete lines of `self.partial` (all of it when `flush`).
    fn take_lines(&mut self, flush: bool) -> Option<Bytes> {
        let end = if flush {
            self.partial.len()
        } else {
            self.partial
                .iter()
                .rposition(|b| matches!(b, b'\n' | b'\r'))
                .map(|i| i + 1)?
        };
        if end == 0 {
            return None;
        }
        let complete = self.partial.split_to(end);
        let mut out = BytesMut::with_capacity(complete.len() + 32);
        for line in split_inclusive_lines(&complete) {
            let content_end = line
                .iter()
                .position(|b| matches!(b, b'\n' | b'\r'))
                .unwrap_or(line.len());
            let (content, ending) = line.split_at(content_end);
            match event_id(content) {
                Some(id) if !id.is_empty() => {
                    out.extend_from_slice(b"id: ");
                    let id = String::from_utf8_lossy(id);
                    out.extend_from_slice(
                        self.key
                            .seal(HandleKind::Event, self.principal, &id)
                            .as_bytes(),
                    );
                    out.extend_from_slice(ending);
                }
                _ => out.extend_from_slice(line),
            }
        }
        Some(out.freeze())
    }
}

/// Whether a line of `data` (which starts a line) may be an `id` field: one starting with
/// `id` (`idle:` too; those take the line-by-line path, which tells them apart).
fn may_name_an_id(data: &[u8]) -> bool {
    let mut rest = data;
    loop {
        if rest.starts_with(b"id") {
            return true;
        }
        match rest.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            Some(i) => rest = &rest[i + 1..],
            None => return false,
        }
    }
}

/// The value of an `id` field line (`id`, `id:x`, `id: x`), per the SSE grammar.
fn event_id(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"id")?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// Lines with their terminators (`\r\n`, `\n` or `\r`), the last one possibly unterminated.
fn split_inclusive_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => i + 2,
            Some(i) => i + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

impl<B> HttpBody for SealedEventIds<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(trailers) = this.trailers.take() {
                return Poll::Ready(Some(Ok(trailers)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    // Whole lines, none of them an `id` field (what a stream without an
                    // event store sends): passed on as they came, not copied.
                    Ok(data)
                        if this.partial.is_empty()
                            && data.last().is_some_and(|b| matches!(b, b'\n' | b'\r'))
                            && !may_name_an_id(&data) =>
                    {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(data) => {
                        this.partial.extend_from_slice(&data);
                        if let Some(lines) = this.take_lines(false) {
                            return Poll::Ready(Some(Ok(Frame::data(lines))));
                        }
                    }
                    Err(frame) => {
                        // Trailers end the body: an open line is sent first, then they follow.
                        if let Some(lines) = this.take_lines(true) {
                            this.trailers = Some(frame);
                            return Poll::Ready(Some(Ok(Frame::data(lines))));
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    this.done = true;
                    return Poll::Ready(this.take_lines(true).map(|b| Ok(Frame::data(b))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailers.is_none()
            && (self.done || (self.partial.is_empty() && self.inner.is_end_stream()))
    }

    fn size_hint(&self) -> SizeHint {
        // Sealing lengthens ids: no exact size.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn principal(n: u8) -> Principal {
        Principal::from_bytes([n; 32])
    }

    #[test]
    fn a_sealed_handle_opens_for_its_principal_only() {
        let key = HandleKey::new([7; 32]);
        let sealed = key.seal(HandleKind::Event, principal(1), "stream-1/42");
        assert_eq!(
            key.open(HandleKind::Event, principal(1), &sealed),
            Some("stream-1/42")
        );
        assert_eq!(key.open(HandleKind::Event, principal(2), &sealed), None);
        assert_eq!(
            HandleKey::new([8; 32]).open(HandleKind::Event, principal(1), &sealed),
            None
        );
        assert_eq!(
            key.open(HandleKind::Event, principal(1), "stream-1/42"),
            None
        );
        assert_eq!(
            key.open(
                HandleKind::Event,
                principal(1),
                "stream-1/42.AAAAAAAAAAAAAAAAAAAAAA"
            ),
            None
        );
        // An event id never opens as a task id.
        assert_eq!(key.open(HandleKind::Task, principal(1), &sealed), None);
        // Ids may hold dots: the tag is after the last one.
        let dotted = key.seal(HandleKind::Event, principal(1), "a.b.c");
        assert_eq!(
            key.open(HandleKind::Event, principal(1), &dotted),
            Some("a.b.c")
        );
        // A task id that does not open never comes out as an id the server issued, nor
        // carries any of the presented text.
        let sealed = key.seal(HandleKind::Task, principal(1), "stream-1/42");
        assert_eq!(
            key.unseal_or_spoil(Some(principal(1)), &sealed),
            "stream-1/42"
        );
        assert_ne!(
            key.unseal_or_spoil(Some(principal(2)), &sealed),
            "stream-1/42"
        );
        assert_ne!(key.unseal_or_spoil(Some(principal(1)), "abc"), "abc");
        assert_ne!(key.unseal_or_spoil(None, &sealed), "stream-1/42");
        assert!(
            !key.unseal_or_spoil(Some(principal(2)), &sealed)
                .contains("stream-1")
        );
    }

    async fn sealed(frames: &[&str]) -> String {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = frames
            .iter()
            .map(|f| Ok(Frame::data(Bytes::copy_from_slice(f.as_bytes()))))
            .collect();
        let body = StreamBody::new(futures::stream::iter(frames));
        let body = SealedEventIds::new(body, HandleKey::new([7; 32]), principal(1));
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn event_ids_are_sealed_and_everything_else_passes_byte_for_byte() {
        let key = HandleKey::new([7; 32]);
        let one = key.seal(HandleKind::Event, principal(1), "1");
        let two = key.seal(HandleKind::Event, principal(1), "2");
        let out = sealed(&[
            "retry: 3000\nid:1\ndata: {\"a\":1}\n\n",
            "id: 2\r\ndata: x\r\n\r\n",
        ])
        .await;
        assert_eq!(
            out,
            format!("retry: 3000\nid: {one}\ndata: {{\"a\":1}}\n\nid: {two}\r\ndata: x\r\n\r\n")
        );
        // An id line cut across frames, and data lines that merely mention ids.
        let out = sealed(&["data: id: 9\ni", "d: 2\n\n", "idle: 1\n"]).await;
        assert_eq!(out, format!("data: id: 9\nid: {two}\n\nidle: 1\n"));
        // Whole frames without ids pass as they are, around frames that need sealing.
        let out = sealed(&[
            "data: {\"id\":1}\n\n",
            "event: message\r\ndata: x\r\n\r\n",
            "id: 1\ndata: y\n\n",
            "data: z\nid",
            ": 2\n\n",
        ])
        .await;
        assert_eq!(
            out,
            format!(
                "data: {{\"id\":1}}\n\nevent: message\r\ndata: x\r\n\r\nid: {one}\ndata: y\n\ndata: z\nid: {two}\n\n"
            )
        );
        assert!(!may_name_an_id(b"data: {\"id\":1}\n\nevent: id\n"));
        assert!(may_name_an_id(b"data: x\r\nid: 3\r\n"));
        assert!(may_name_an_id(b"id\n"));
        // An empty id (which resets the client's last id) stays empty; an unterminated last
        // line is flushed.
        let out = sealed(&["id\n", "id:\n", "id: 2"]).await;
        assert_eq!(out, format!("id\nid:\nid: {two}"));
    }
}
