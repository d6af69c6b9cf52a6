//! Making untrusted text safe to put in a log line.

use std::borrow::Cow;

/// Replaces control characters (including CR/LF, which could forge log lines)
/// with `?` and truncates to `max` characters. Use for user and domain names;
/// passwords are never logged at all.
pub fn clean(text: &str, max: usize) -> Cow<'_, str> {
    let needs = text.chars().count() > max || text.chars().any(char::is_control);
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    Cow::Owned(out)
}

/// `user@domain`, cleaned for logging.
pub fn jid(user: &str, domain: &str) -> String {
    format!("{}@{}", clean(user, 128), clean(domain, 128))
}

/// Whether `written` looks like an option name (a lower-case letter, then at most 31 of
/// lower-case letters, digits, `-` or `_`, after optional leading dashes), so that echoing it
/// in an error cannot leak a credential typed in the wrong place. A word standing alone
/// (`bare`: no `=` or value after it) must also be free of digits, as option names are: a
/// pasted password or secret is never echoed into a log.
pub fn looks_like_name(written: &str, bare: bool) -> bool {
    let name = written.trim_start_matches('-');
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 32
        && first.is_ascii_lowercase()
        && chars.all(|c| {
            c.is_ascii_lowercase() || c == '-' || c == '_' || (!bare && c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_controls_and_truncates() {
        assert_eq!(clean("alice", 10), "alice");
        assert_eq!(clean("a\nINFO fake", 64), "a?INFO fake");
        assert_eq!(clean("abcdef", 3), "abc…");
        assert_eq!(jid("a\r", "b"), "a?@b");
    }

    #[test]
    fn looks_like_name_table() {
        let long_ok = "a".repeat(32);
        let long_bad = "a".repeat(33);
        let dashed_ok = format!("--{long_ok}");
        // (written, looks like a name with a value, looks like a name standing alone)
        let table: &[(&str, bool, bool)] = &[
            ("quiet", true, true),
            ("socket_owner", true, true),
            ("cache-query-ttl", true, true),
            ("x", true, true),
            // Leading dashes are not part of the name, so they neither count nor qualify.
            ("--debug", true, true),
            ("-d", true, true),
            ("-", false, false),
            ("---", false, false),
            ("", false, false),
            // Inner and trailing dashes and underscores are fine; a leading underscore is not.
            ("a-", true, true),
            ("a_b-c", true, true),
            ("_a", false, false),
            ("-_a", false, false),
            // Digits: only in a name followed by a value, and never first.
            ("sha256", true, false),
            ("a1", true, false),
            ("s3cr3tPass", false, false),
            ("1a", false, false),
            ("42", false, false),
            ("-1", false, false),
            // Lower-case ASCII only.
            ("Quiet", false, false),
            ("quieT", false, false),
            ("hunter", true, true),
            ("Hunter2", false, false),
            ("café", false, false),
            ("ä", false, false),
            // No spaces, dots, slashes, colons, '=' or controls.
            ("a b", false, false),
            ("a.b", false, false),
            ("a/b", false, false),
            ("a:b", false, false),
            ("a=b", false, false),
            ("a\tb", false, false),
            ("a\n", false, false),
            (" a", false, false),
            // At most 32 characters after the dashes.
            (&long_ok, true, true),
            (&dashed_ok, true, true),
            (&long_bad, false, false),
        ];
        for &(written, with_value, bare) in table {
            assert_eq!(
                looks_like_name(written, false),
                with_value,
                "{written:?} with a value"
            );
            assert_eq!(looks_like_name(written, true), bare, "{written:?} alone");
        }
    }
}
