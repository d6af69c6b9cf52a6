//! Which [`Target`] serves a domain: a `domains` row wins whole, else the global settings
//! serve the domains they are meant for (`served-domains`), and every other domain is not
//! served here (docs/xcauth2.md §3.4).

use std::fmt;

use log::error;

use super::Engine;
use crate::backend::{BackendKind, Target};
use crate::domains::DomainRow;
use crate::secret::Secret;
use crate::vocab::{BackendUrl, Misconfigured, Unavailable};

/// The global `url`/`secret` pair used when a domain has no row.
#[derive(Clone, PartialEq, Eq)]
pub struct GlobalBackend {
    /// `--url`.
    pub url: BackendUrl,
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
/// fallback to the global pair, see [`resolve_row`]); without one the global
/// settings serve it.
///
/// Every target is asked through the JSXC API for now; with a second
/// [`BackendKind`], the global settings and each row name theirs here.
pub fn resolve(
    global: &GlobalBackend,
    row: Option<DomainRow>,
    xmppdomain: &str,
) -> Result<Target, Unavailable> {
    match row {
        Some(row) => resolve_row(row, xmppdomain),
        None => Ok(Target {
            kind: BackendKind::Jsxc,
            url: global.url.clone(),
            secret: global.secret.clone(),
            authdomain: xmppdomain.to_owned(),
        }),
    }
}

/// The target a `domains` row describes for `xmppdomain`: a NULL `authdomain`
/// means the XMPP domain; a row with NULL secret or URL is a configuration error.
pub fn resolve_row(row: DomainRow, xmppdomain: &str) -> Result<Target, Unavailable> {
    let domain = || xmppdomain.to_owned();
    // An empty secret is a public HMAC key: anyone could mint tokens.
    let secret = row
        .secret
        .filter(|s| !s.expose().trim().is_empty())
        .ok_or_else(|| misconfigured(Misconfigured::NoSecret { domain: domain() }))?;
    let url = match row.url {
        Some(Ok(url)) => url,
        Some(Err(error)) => {
            return Err(misconfigured(Misconfigured::BadUrl {
                domain: domain(),
                error,
            }))
        }
        None => return Err(misconfigured(Misconfigured::NoUrl { domain: domain() })),
    };
    Ok(Target {
        kind: BackendKind::Jsxc,
        url,
        secret,
        authdomain: row.authdomain.unwrap_or_else(|| xmppdomain.to_owned()),
    })
}

fn misconfigured(why: Misconfigured) -> Unavailable {
    Unavailable::Misconfigured(why)
}

/// Where a domain's logins go.
pub(super) enum Route {
    /// This backend serves the domain.
    Serve(Target),
    /// Nobody here serves the domain: its names are unknown users.
    NotServed,
}

impl Engine {
    /// The URL, secret and authdomain serving `domain`. A domain that is not
    /// served is reported as misconfigured.
    pub fn target(&self, domain: &str) -> Result<Target, Unavailable> {
        match self.route(domain)? {
            Route::Serve(target) => Ok(target),
            Route::NotServed => Err(misconfigured(Misconfigured::NotServed {
                domain: domain.to_owned(),
            })),
        }
    }

    pub(super) fn route(&self, domain: &str) -> Result<Route, Unavailable> {
        // Fail closed: without the per-domain table we cannot know whether
        // this domain belongs to another Nextcloud, so asking the global one
        // could let its users in under a foreign domain.
        let row = match self.domains.lookup(domain) {
            Ok(row) => row,
            Err(error) => {
                let why = Misconfigured::DomainsUnreadable {
                    domain: domain.to_owned(),
                    error,
                };
                error!("{why}");
                return Err(misconfigured(why));
            }
        };
        if row.is_none() && !self.serves_globally(domain) {
            return Ok(Route::NotServed);
        }
        // The global URL was checked with the configuration; a row's URL is
        // checked here, where it is first used.
        let from_row = row.is_some();
        let target = resolve(&self.global, row, domain).and_then(|t| {
            if from_row && t.url.is_insecure() && !self.allow_insecure_http {
                return Err(misconfigured(Misconfigured::InsecureUrl {
                    domain: domain.to_owned(),
                    url: t.url,
                }));
            }
            Ok(t)
        });
        match target {
            Ok(target) => Ok(Route::Serve(target)),
            Err(e) => {
                error!("{e}");
                Err(e)
            }
        }
    }

    fn serves_globally(&self, domain: &str) -> bool {
        match &self.served {
            None => true,
            Some(list) => list.iter().any(|d| d.eq_ignore_ascii_case(domain)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::UrlError;

    fn global() -> GlobalBackend {
        GlobalBackend {
            url: BackendUrl::parse("https://g/").unwrap(),
            secret: Secret::new("gs"),
        }
    }

    /// A row's `authurl` as reading the row parses it.
    fn url(text: &str) -> Option<Result<BackendUrl, UrlError>> {
        Some(BackendUrl::parse(text))
    }

    #[test]
    fn no_row_uses_global_and_xmpp_domain() {
        let t = resolve(&global(), None, "example.org").unwrap();
        assert_eq!(t.url.as_str(), "https://g/");
        assert_eq!(t.secret.expose(), "gs");
        assert_eq!(t.authdomain, "example.org");
    }

    #[test]
    fn row_wins_whole_and_null_authdomain_means_xmpp_domain() {
        let row = DomainRow {
            secret: Some(Secret::new("rs")),
            url: url("https://r/"),
            authdomain: None,
        };
        let t = resolve(&global(), Some(row), "x.org").unwrap();
        assert_eq!(
            (t.url.as_str(), t.secret.expose(), t.authdomain.as_str()),
            ("https://r/", "rs", "x.org")
        );
        let row = DomainRow {
            secret: Some(Secret::new("rs")),
            url: url("https://r/"),
            authdomain: Some(String::new()),
        };
        assert_eq!(
            resolve(&global(), Some(row), "x.org").unwrap().authdomain,
            ""
        );
    }

    #[test]
    fn empty_secret_or_unusable_url_is_misconfigured() {
        let row = DomainRow {
            secret: Some(Secret::new("")),
            url: url("https://r/"),
            authdomain: None,
        };
        assert_eq!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(Misconfigured::NoSecret {
                domain: "x".into()
            }))
        );
        let row = DomainRow {
            secret: Some(Secret::new("s")),
            url: url("ftp://r/"),
            authdomain: None,
        };
        assert!(matches!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(Misconfigured::BadUrl {
                error: UrlError::Scheme { .. },
                ..
            }))
        ));
    }

    #[test]
    fn null_secret_or_url_is_misconfigured() {
        let row = DomainRow {
            secret: None,
            url: url("https://r/"),
            authdomain: None,
        };
        assert_eq!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(Misconfigured::NoSecret {
                domain: "x".into()
            }))
        );
        let row = DomainRow {
            secret: Some(Secret::new("s")),
            url: None,
            authdomain: None,
        };
        assert_eq!(
            resolve(&global(), Some(row), "x"),
            Err(Unavailable::Misconfigured(Misconfigured::NoUrl {
                domain: "x".into()
            }))
        );
    }
}
