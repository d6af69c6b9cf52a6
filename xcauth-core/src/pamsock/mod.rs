//! The Unix-socket protocol between `pam_xcauth.so` (`socket=PATH`) and `xcauthd`.
//!
//! The PAM module runs inside hosts such as Apache (as `www-data`) that must not be able to read
//! the API secret. With `socket=` it asks a running `xcauthd` instead: one short blocking
//! request/reply exchange per question, and the daemon keeps the secret, the HTTP client, the
//! circuit breaker and the cache.
//!
//! # Wire format (version 4)
//!
//! Every message is a frame: a 4-byte big-endian payload length, then the payload. A payload is
//! never empty and never longer than [`MAX_FRAME`]; a receiver rejects anything else before
//! reading the payload. Strings are a 2-byte big-endian length followed by UTF-8 bytes. A
//! payload must be consumed exactly: trailing bytes are an error.
//!
//! | request payload | meaning |
//! |---|---|
//! | `04 'a'` flags:u8 user domain password rhost | check a password (or token); flag bit 0: the
//! |  | module needs the account's uid (`group=`), so the daemon skips its credential cache; rhost: `PAM_RHOST` (empty when unknown), which the throttle counts failures by |
//! | `04 'u'` user domain | does the user exist? |
//! | `04 'g'` uid domain | the Nextcloud groups of exactly the account `uid` (from an `A` reply) |
//! | `04 's'` | the daemon's counters (`xcauthd stats`) |
//!
//! | reply payload | meaning |
//! |---|---|
//! | `04 'A'` via uid | accepted; via = 0 token, 1 cache, 2 backend, 3 cache while unreachable; uid = the Nextcloud account that logged in, empty when unknown |
//! | `04 'R'` | rejected (wrong password, unknown user, or a name that does not spell the account) |
//! | `04 'Y'` / `04 'N'` | the user exists / does not exist |
//! | `04 'G'` count:u16 string… | group display names |
//! | `04 'S'` count:u16 (key:string value:u64)… | the counters ([`crate::metrics`]) |
//! | `04 'U'` reason | the backend could not answer (any operation) |
//! | `04 'E'` message | the request was malformed; the server closes the connection |
//!
//! The daemon matches names exactly ([`crate::vocab::NameMatch::Exact`]): a PAM login name must spell the
//! Nextcloud account the password belongs to.
//!
//! A connection may carry several requests in turn (the module sends `isuser` after a
//! rejection on the same connection). The server closes it after its idle timeout.
//!
//! # Layout
//!
//! - `codec`: sans-I/O ([`encode_request`], [`decode_request`], [`encode_reply`],
//!   [`decode_reply`], [`frame_len`]); needs only [`crate::Via`] and [`crate::Password`].
//! - `io`: reading and writing whole frames against deadlines, over any
//!   [`crate::deadline::DeadlineStream`].
//! - `client`: [`Connection`] (the PAM module's side), with the typed [`ClientError`].
//! - `server`: [`serve_pam_connection`] (xcauthd's side), the only part that asks for
//!   decisions, through the [`Decider`] seam (which [`crate::Engine`] implements).
//!
//! Buffers that hold a password are wiped on drop, and [`PamRequest`]'s `Debug` shows
//! `Password(<redacted>)`.

mod client;
mod codec;
mod io;
mod server;
#[cfg(test)]
mod tests;

pub use self::client::{ClientError, Connection};
pub use self::codec::{
    decode_reply, decode_request, encode_reply, encode_request, frame_len, CodecError, PamReply,
    PamRequest, MAX_FRAME, MAX_NAME, MAX_PASSWORD, MAX_STATS_KEY, PROTOCOL_VERSION,
};
pub use self::server::{
    answer_pam_request, serve_pam_connection, serve_pam_connection_until, Decider,
};
