//! xcauth-core: everything xcauth decides, with no I/O policy of its own.
//!
//! - [`config`]: `xcauth.conf` + command line → one validated [`config::Config`].
//! - [`token`]: JSXC time-limited tokens.
//! - [`jsxc`]: the signed HTTP client for Nextcloud's JSXC external API.
//! - [`engine`]: the decision (token → cache → backend → cache when unreachable).
//! - [`cache`], [`domains`]: the seams for the credential cache and per-domain settings.
//! - [`codec`]: sans-I/O decoders/encoders for the four wire framings.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod backend;
pub mod cache;
pub mod clock;
pub mod codec;
pub mod config;
pub mod db;
pub mod deadline;
pub mod domains;
pub mod engine;
pub mod jsxc;
pub mod logsafe;
pub mod pamsock;
pub mod protocol;
pub mod secret;
pub mod token;
pub mod trust;

pub use backend::{AuthReply, Backend, RosterReply, Target, Unavailable, UserExists};
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{AuthDecision, Engine, Via};
pub use secret::{Password, Secret};

/// The version printed by `--version` and sent in the User-Agent.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
