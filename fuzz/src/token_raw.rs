//! The token path on the raw input: the bytes are the token (lossily made UTF-8, as the
//! validator takes `&str`). The seed corpus holds valid tokens of every trusted key, so
//! mutations start deep in the validator. Validated at `T0` and two hours later (when the
//! seeds' tokens have expired), with and without the token cache.

use std::time::Duration;

use crate::oracle::{T0, validate_everywhere};

pub fn run(data: &[u8]) {
    crate::keys::forget_signatures();
    let token = String::from_utf8_lossy(data);
    validate_everywhere(
        &token,
        Duration::from_secs(T0),
        Duration::from_secs(T0 + 7200),
    );
}
