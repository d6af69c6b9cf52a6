//! Per-domain settings from the `domains` table (docs/xcauth2.md §3.4).
//!
//! Read on every lookup, so `xcauthd domains add/change` (or an admin's
//! `sqlite3`) takes effect without a restart. The match ignores ASCII case
//! (domain names do; the PAM module lower-cases them, SASL realms may not be),
//! an exact match winning over a case-folded one — the original compared
//! case-sensitively, which silently sent `EXAMPLE.org` to the global backend.
//! NULL fields come back as `None` and the engine's routing decides what they
//! mean; `authurl` is parsed here, once per read.

use std::fmt;
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::OptionalExtension;

use super::Db;
use crate::domains::{DomainRow, Domains};
use crate::secret::Secret;
use crate::vocab::BackendUrl;

/// The `domains` table of a [`Db`].
pub struct SqliteDomains {
    db: Arc<Db>,
}

impl fmt::Debug for SqliteDomains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteDomains")
            .field("db", &self.db.label())
            .finish()
    }
}

impl SqliteDomains {
    /// Per-domain settings read from `db`.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

impl Domains for SqliteDomains {
    fn lookup(&self, xmppdomain: &str) -> Result<Option<DomainRow>, String> {
        self.db
            .run(|c| {
                c.prepare_cached(
                    "SELECT authsecret, authurl, authdomain FROM domains \
                     WHERE xmppdomain = ?1 COLLATE NOCASE \
                     ORDER BY xmppdomain = ?1 DESC LIMIT 1",
                )?
                .query_row([xmppdomain], |r| {
                    Ok(DomainRow {
                        secret: text_column(r, 0)?.map(Secret::new),
                        url: text_column(r, 1)?
                            .filter(|u| !u.trim().is_empty())
                            .map(|u| BackendUrl::parse(&u)),
                        authdomain: text_column(r, 2)?,
                    })
                })
                .optional()
            })
            .map_err(|e| e.to_string())
    }
}

/// A TEXT column read leniently: text as is, numbers as their decimal form
/// (`sqlite3` users sometimes insert a numeric secret), a UTF-8 blob as text.
/// NULL and a non-UTF-8 blob are `None`.
pub(crate) fn text_column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_of(row: &DomainRow) -> Option<&str> {
        match &row.url {
            Some(Ok(url)) => Some(url.as_str()),
            Some(Err(e)) => panic!("unparsed authurl: {e}"),
            None => None,
        }
    }

    fn db_with_rows() -> Arc<Db> {
        let db = Arc::new(Db::open_memory().unwrap());
        db.run(|c| {
            c.execute_batch(
                "INSERT INTO domains (xmppdomain, authsecret, authurl, authdomain) VALUES
                   ('full.example', 's1', 'https://one/', 'cloud.example'),
                   ('nullad.example', 's2', 'https://two/', NULL),
                   ('emptyad.example', 's3', 'https://three/', ''),
                   ('nosecret.example', NULL, 'https://four/', NULL),
                   ('numeric.example', 99999, 'https://five/', 'x'),
                   ('blankurl.example', 's6', '  ', NULL),
                   ('badurl.example', 's7', 'ftp://seven/', NULL);",
            )
        })
        .unwrap();
        db
    }

    #[test]
    fn lookup_maps_columns_and_nulls() {
        let d = SqliteDomains::new(db_with_rows());
        let row = d.lookup("full.example").unwrap().unwrap();
        assert_eq!(url_of(&row), Some("https://one/"));
        assert_eq!(row.secret.unwrap().expose(), "s1");
        assert_eq!(row.authdomain.as_deref(), Some("cloud.example"));
        assert_eq!(
            d.lookup("nullad.example").unwrap().unwrap().authdomain,
            None
        );
        assert_eq!(
            d.lookup("emptyad.example")
                .unwrap()
                .unwrap()
                .authdomain
                .as_deref(),
            Some("")
        );
        assert!(d
            .lookup("nosecret.example")
            .unwrap()
            .unwrap()
            .secret
            .is_none());
        assert_eq!(
            d.lookup("numeric.example")
                .unwrap()
                .unwrap()
                .secret
                .unwrap()
                .expose(),
            "99999"
        );
    }

    #[test]
    fn authurl_is_parsed_when_read() {
        let d = SqliteDomains::new(db_with_rows());
        assert_eq!(d.lookup("blankurl.example").unwrap().unwrap().url, None);
        assert!(matches!(
            d.lookup("badurl.example").unwrap().unwrap().url,
            Some(Err(crate::vocab::UrlError::Scheme { .. }))
        ));
    }

    #[test]
    fn lookup_ignores_case_but_nothing_else() {
        let d = SqliteDomains::new(db_with_rows());
        let row = d.lookup("FULL.example").unwrap().unwrap();
        assert_eq!(url_of(&row), Some("https://one/"));
        assert_eq!(d.lookup("full.example.").unwrap(), None);
        assert_eq!(d.lookup("%").unwrap(), None);
        assert_eq!(d.lookup("").unwrap(), None);
    }

    #[test]
    fn changes_are_seen_without_reopening() {
        let db = db_with_rows();
        let d = SqliteDomains::new(db.clone());
        assert_eq!(d.lookup("new.example").unwrap(), None);
        db.run(|c| {
            c.execute(
                "INSERT INTO domains (xmppdomain, authsecret, authurl) VALUES ('new.example', 'n', 'https://n/')",
                [],
            )
        })
        .unwrap();
        assert_eq!(
            url_of(&d.lookup("new.example").unwrap().unwrap()),
            Some("https://n/")
        );
    }

    #[test]
    fn a_broken_table_is_an_error_not_a_panic() {
        let db = Arc::new(Db::open_memory().unwrap());
        db.run(|c| c.execute_batch("DROP TABLE domains")).unwrap();
        let err = SqliteDomains::new(db).lookup("x").unwrap_err();
        assert!(err.contains("domains"), "{err}");
    }
}
