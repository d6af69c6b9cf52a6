//! The per-domain settings seam: which URL, secret and authdomain serve an XMPP domain
//! (docs/xcauth2.md §3.4). [`Domains`] is what the engine asks (the SQLite
//! implementation is [`crate::db::SqliteDomains`]); the engine's routing turns a row, or the
//! global settings, into the target it asks.

use std::fmt;

use crate::secret::Secret;
use crate::vocab::{BackendUrl, UrlError};

/// A row of the `domains` table, as stored (any field may be NULL).
#[derive(Clone, PartialEq, Eq)]
pub struct DomainRow {
    /// `authsecret`.
    pub secret: Option<Secret>,
    /// `authurl`, parsed when the row was read: `None` when NULL or blank, an error when it
    /// is no usable backend URL.
    pub url: Option<Result<BackendUrl, UrlError>>,
    /// `authdomain`.
    pub authdomain: Option<String>,
}

impl fmt::Debug for DomainRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainRow")
            .field("secret", &self.secret)
            .field("url", &self.url)
            .field("authdomain", &self.authdomain)
            .finish()
    }
}

/// A source of per-domain rows (the sqlite `domains` table, or nothing).
pub trait Domains: Send + Sync + fmt::Debug {
    /// The row for this XMPP domain, if any. Domain names ignore ASCII case, and an exact
    /// spelling wins over a case-folded one. An error means the source could not be read;
    /// the engine then fails closed (the request is unavailable, logged as an error): it
    /// never falls back to the global settings, which may serve another tenant.
    fn lookup(&self, xmppdomain: &str) -> Result<Option<DomainRow>, String>;
}

/// No per-domain table: every domain uses the global URL and secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDomains;

impl Domains for NoDomains {
    fn lookup(&self, _xmppdomain: &str) -> Result<Option<DomainRow>, String> {
        Ok(None)
    }
}
