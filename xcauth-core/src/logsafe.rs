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
}
