//! The per-domain settings seam: which URL, secret and authdomain serve an XMPP domain
//! (docs/xcauth2.md §3.4). [`Domains`] is what the engine asks (the SQLite
//! implementation is [`crate::db::SqliteDomains`]); [`resolve`] turns its row, or the
//! global pair, into a [`Target`].

use std::fmt;

use crate::backend::{BackendKind, Target};
use crate::secret::Secret;
use crate::vocab::Unavailable;

/// A row of the `domains` table, as stored (any field may be NULL).
#[derive(Clone, PartialEq, Eq)]
pub struct DomainRow {
    /// `authsecret`.
    pub secret: Option<Secret>,
    /// `authurl`.
    pub url: Option<String>,
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

/// The global `url`/`secret` pair used when a domain has no row.
#[derive(Clone, PartialEq, Eq)]
pub struct GlobalBackend {
    /// `--url`.
    pub url: String,
    /// `--secret`.
    pub secret: Secret,
}

impl fmt::Debug for GlobalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalBackend")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Resolves the target for `xmppdomain`: a row wins whole (no per-field
/// fallback to the global pair), except that a NULL `authdomain` means the
/// XMPP domain. A row with NULL secret or URL is a configuration error.
pub fn resolve(
    global: &GlobalBackend,
    row: Option<DomainRow>,
    xmppdomain: &str,
) -> Result<Target, Unavailable> {
    let Some(row) = row else {
        return Ok(Target {
            kind: BackendKind::Jsxc,
            url: global.url.clone(),
            secret: global.secret.clone(),
            authdomain: xmppdomain.to_owned(),
        });
    };
    // An empty secret is a public HMAC key: anyone could mint tokens.
    let secret = row
        .secret
        .filter(|s| !s.expose().trim().is_empty())
        .ok_or_else(|| {
            Unavailable::Misconfigured(format!(
                "domains row for {xmppdomain:?} has no (or an empty) authsecret"
            ))
        })?;
    let url = row.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        Unavailable::Misconfigured(format!("domains row for {xmppdomain:?} has no authurl"))
    })?;
    Ok(Target {
        kind: BackendKind::Jsxc,
        url,
        secret,
        authdomain: row.authdomain.unwrap_or_else(|| xmppdomain.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> GlobalBackend {
        GlobalBackend {
            url: "https://g/".into(),
            secret: Secret::new("gs"),
        }
    }

    #[test]
    fn no_row_uses_global_and_xmpp_domain() {
        let t = resolve(&global(), None, "example.org").unwrap();
        assert_eq!(t.url, "https://g/");
        assert_eq!(t.secret.expose(), "gs");
        assert_eq!(t.authdomain, "example.org");
    }

    #[test]
    fn row_wins_whole_and_null_authdomain_means_xmpp_domain() {
        let row = DomainRow {
            secret: Some(Secret::new("rs")),
            url: Some("https://r/".into()),
            authdomain: None,
        };
        let t = resolve(&global(), Some(row), "x.org").unwrap();
        assert_eq!(
            (t.url.as_str(), t.secret.expose(), t.authdomain.as_str()),
            ("https://r/", "rs", "x.org")
        );
        let row = DomainRow {
            secret: Some(Secret::new("rs")),
            url: Some("https://r/".into()),
            authdomain: Some(String::new()),
        };
        assert_eq!(
            resolve(&global(), Some(row), "x.org").unwrap().authdomain,
            ""
        );
    }

    #[test]
    fn empty_secret_or_url_is_misconfigured() {
        let row = DomainRow {
            secret: Some(Secret::new("")),
            url: Some("https://r/".into()),
            authdomain: None,
        };
        assert!(matches!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(_))
        ));
        let row = DomainRow {
            secret: Some(Secret::new("s")),
            url: Some(" ".into()),
            authdomain: None,
        };
        assert!(matches!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(_))
        ));
    }

    #[test]
    fn null_secret_or_url_is_misconfigured() {
        let row = DomainRow {
            secret: None,
            url: Some("https://r/".into()),
            authdomain: None,
        };
        assert!(matches!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(_))
        ));
        let row = DomainRow {
            secret: Some(Secret::new("s")),
            url: None,
            authdomain: None,
        };
        assert!(matches!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(_))
        ));
    }
}
