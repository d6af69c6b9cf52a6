//! The four tables of xcauth 2 (docs/xcauth2.md §3.1), column for column
//! and with the same declared types, so an existing
//! `/var/lib/xcauth/xcauth.sqlite3` is read and written unchanged.
//!
//! Unlike the original (which created tables only for a new file and raced
//! when several processes started at once, xcauth 2's issue 66, docs/xcauth2.md §3.3), an open that finds a
//! table missing runs all `CREATE TABLE IF NOT EXISTS` statements in one
//! immediate transaction: a partially created file is completed and parallel
//! starts do not race. A complete file is only read.
//!
//! xcauth-rs adds one table of its own, [`THROTTLE_TABLE`], created on first use.

use log::warn;
use rusqlite::{Connection, Transaction};

/// Every table with its columns, in the original's order and declared types.
pub const TABLES: [(&str, &str); 4] = [
    (
        "domains",
        "xmppdomain TEXT PRIMARY KEY, \
         authsecret TEXT, \
         authurl TEXT, \
         authdomain TEXT, \
         regcontact TEXT, \
         regfirst TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
         reglatest TIMESTAMP DEFAULT CURRENT_TIMESTAMP",
    ),
    (
        "authcache",
        "jid TEXT PRIMARY KEY, \
         pwhash TEXT, \
         firstauth TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
         remoteauth TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
         anyauth TIMESTAMP DEFAULT CURRENT_TIMESTAMP",
    ),
    (
        "rosterinfo",
        "jid TEXT PRIMARY KEY, \
         fullname TEXT, \
         grouplist TEXT, \
         responsehash TEXT, \
         last_update TIMESTAMP DEFAULT CURRENT_TIMESTAMP",
    ),
    ("rostergroups", "groupname TEXT PRIMARY KEY, userlist TEXT"),
];

/// xcauth-rs's own table, unknown to xcauth 2 (which never reads it): brute-force throttling
/// state shared by every process using the file (`crate::throttle`), times in Unix seconds.
/// It is created by the first failed login that needs it, not when the file is opened, so a
/// file that never saw one keeps exactly xcauth 2's tables.
pub const THROTTLE_TABLE: (&str, &str) = (
    "throttle",
    "key TEXT PRIMARY KEY, \
     failures INTEGER NOT NULL, \
     since INTEGER NOT NULL, \
     locked_until INTEGER NOT NULL, \
     lockouts INTEGER NOT NULL, \
     expires INTEGER NOT NULL",
);

/// Creates the throttle table and its index if missing (inside the caller's transaction).
pub(crate) fn create_throttle(conn: &Connection) -> rusqlite::Result<()> {
    let (table, columns) = THROTTLE_TABLE;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} ({columns}); \
         CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires);"
    ))
}

/// Creates whichever tables are missing, in `tx` (the caller commits).
pub(crate) fn create_missing(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (table, columns) in TABLES {
        tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {table} ({columns})"))?;
    }
    Ok(())
}

/// True when every table exists (the file needs no schema write).
pub(crate) fn all_tables_exist(conn: &Connection) -> rusqlite::Result<bool> {
    let mut stmt =
        conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?;
    for (table, _) in TABLES {
        if !stmt.exists([table])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Logs a warning for every expected column an existing table lacks (a table
/// created by hand or by some other tool). Queries touching such a column
/// fail and count as cache misses; nothing is altered automatically.
pub(crate) fn warn_about_missing_columns(conn: &Connection, label: &str) -> rusqlite::Result<()> {
    for (table, columns) in TABLES {
        let present = column_names(conn, table)?;
        if present.is_empty() {
            continue;
        }
        let missing: Vec<&str> = columns
            .split(", ")
            .filter_map(|c| c.split_whitespace().next())
            .filter(|c| !present.iter().any(|p| p.eq_ignore_ascii_case(c)))
            .collect();
        if !missing.is_empty() {
            warn!(
                "database {label}: table {table} lacks column(s) {}; operations using them will fail",
                missing.join(", ")
            );
        }
    }
    Ok(())
}

/// The column names of `table` (empty when the table does not exist).
pub(crate) fn column_names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    names.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, DbOptions};

    fn declared(conn: &Connection, table: &str) -> Vec<(String, String, Option<String>, bool)> {
        let mut stmt = conn
            .prepare("SELECT name, type, dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap();
        stmt.query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? == 1))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn col(
        name: &str,
        ty: &str,
        default: bool,
        pk: bool,
    ) -> (String, String, Option<String>, bool) {
        (
            name.into(),
            ty.into(),
            default.then(|| "CURRENT_TIMESTAMP".to_owned()),
            pk,
        )
    }

    fn assert_full_schema(conn: &Connection) {
        assert_eq!(
            declared(conn, "domains"),
            vec![
                col("xmppdomain", "TEXT", false, true),
                col("authsecret", "TEXT", false, false),
                col("authurl", "TEXT", false, false),
                col("authdomain", "TEXT", false, false),
                col("regcontact", "TEXT", false, false),
                col("regfirst", "TIMESTAMP", true, false),
                col("reglatest", "TIMESTAMP", true, false),
            ]
        );
        assert_eq!(
            declared(conn, "authcache"),
            vec![
                col("jid", "TEXT", false, true),
                col("pwhash", "TEXT", false, false),
                col("firstauth", "TIMESTAMP", true, false),
                col("remoteauth", "TIMESTAMP", true, false),
                col("anyauth", "TIMESTAMP", true, false),
            ]
        );
        assert_eq!(
            declared(conn, "rosterinfo"),
            vec![
                col("jid", "TEXT", false, true),
                col("fullname", "TEXT", false, false),
                col("grouplist", "TEXT", false, false),
                col("responsehash", "TEXT", false, false),
                col("last_update", "TIMESTAMP", true, false),
            ]
        );
        assert_eq!(
            declared(conn, "rostergroups"),
            vec![
                col("groupname", "TEXT", false, true),
                col("userlist", "TEXT", false, false)
            ]
        );
    }

    #[test]
    fn creates_all_tables_in_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.sqlite3");
        std::fs::write(&path, b"").unwrap();
        Db::open(&path, &DbOptions::default()).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_full_schema(&conn);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn completes_a_partially_created_file_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE domains ({}); INSERT INTO domains (xmppdomain, authsecret) VALUES ('a.example', 's');",
                TABLES[0].1
            ))
            .unwrap();
        }
        Db::open(&path, &DbOptions::default()).unwrap();
        // A second open (e.g. another process starting) is a no-op.
        Db::open(&path, &DbOptions::default()).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_full_schema(&conn);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM domains", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn parallel_first_opens_do_not_race() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.sqlite3");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Db::open(&path, &DbOptions::default()).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_full_schema(&Connection::open(&path).unwrap());
    }

    #[test]
    fn memory_database_has_the_schema() {
        let db = Db::open_memory().unwrap();
        db.run(|c| {
            assert_full_schema(c);
            Ok(())
        })
        .unwrap();
    }
}
