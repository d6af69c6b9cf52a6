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
