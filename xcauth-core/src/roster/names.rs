//! The two name rules of xcauth 2's roster sync: how a Nextcloud group's display name becomes an
//! ejabberd group name, and how a roster uid becomes a JID.

use icu_properties::props::GeneralCategory as Gc;
use icu_properties::CodePointMapData;

/// The ejabberd group name of a Nextcloud group: only letters (not titlecase), numbers,
/// punctuation, symbols and space separators are kept, and `@` is dropped. So control and
/// format characters (U+200B), combining marks and line separators go, precomposed letters,
/// spaces, NBSP and emoji stay (xcauth 2's `sanitize`, docs/xcauth2.md §8).
///
/// Unlike xcauth 2, backslashes right before an `n` go too: the name is also `srg_create`'s
/// last argument, the groups whose members the group's members see, which ejabberd splits at
/// each `\n` (backslash, `n`). A group named `Admins\nAdmins` would show its members those of
/// `Admins`.
pub fn sanitize(name: &str) -> String {
    let categories = CodePointMapData::<Gc>::new();
    let chars = name
        .chars()
        .filter(|&c| c != '@' && kept(categories.get(c)));
    // From the end, so a run of backslashes before an `n` goes whole, in one pass.
    let mut reversed = Vec::with_capacity(name.len());
    let mut before_n = false;
    for c in chars.rev() {
        if c != '\\' {
            before_n = c == 'n';
        } else if before_n {
            continue;
        }
        reversed.push(c);
    }
    reversed.into_iter().rev().collect()
}

fn kept(category: Gc) -> bool {
    matches!(
        category,
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
            | Gc::DecimalNumber
            | Gc::LetterNumber
            | Gc::OtherNumber
            | Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
            | Gc::MathSymbol
            | Gc::CurrencySymbol
            | Gc::ModifierSymbol
            | Gc::OtherSymbol
            | Gc::SpaceSeparator
    )
}

/// A roster uid as `(user, host)`: split at the first `@`; a bare uid is in `domain` (the
/// login's XMPP domain).
pub fn jidsplit<'a>(uid: &'a str, domain: &'a str) -> (&'a str, &'a str) {
    uid.split_once('@').unwrap_or((uid, domain))
}

/// The full JID of a roster uid.
pub fn full_jid(uid: &str, domain: &str) -> String {
    let (user, host) = jidsplit(uid, domain);
    format!("{user}@{host}")
}

/// The longest argument the kernel passes to a program (`MAX_ARG_STRLEN`, 32 pages of 4 KiB,
/// with its terminating NUL).
pub const MAX_ARG_BYTES: usize = 32 * 4096 - 1;

/// Why `arg` cannot be an argument of ejabberdctl, if it cannot: a NUL byte ends a C string, so
/// the program would see another name (or not start at all), and the kernel refuses longer
/// arguments than [`MAX_ARG_BYTES`]. Nor may it hold a character XML 1.0 does not allow (the
/// C0 controls but tab, line feed and carriage return; U+FFFE, U+FFFF): ejabberd copies names
/// into the stanzas it sends (a full name becomes the `name` of a roster item in every
/// group member's roster) without checking, and a client closes a session whose XML is not
/// well-formed.
pub fn unpassable(arg: &str) -> Option<String> {
    if arg.contains('\0') {
        Some("contains a NUL byte".to_owned())
    } else if arg.len() > MAX_ARG_BYTES {
        Some("is longer than a program argument may be (128 KiB)".to_owned())
    } else {
        arg.chars().find(|&c| !xml_char(c)).map(|c| {
            format!(
                "contains U+{:04X}, a character XML does not allow",
                u32::from(c)
            )
        })
    }
}

/// True for a character of XML 1.0's `Char` production (Rust's `char` has no surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// True when `host` is the login's XMPP `domain` (DNS names ignore ASCII case).
pub fn same_domain(host: &str, domain: &str) -> bool {
    host.eq_ignore_ascii_case(domain)
}

/// True for a group name ending in U+200B ZERO WIDTH SPACE: the administrator's way of keeping
/// a Nextcloud group out of ejabberd (xcauth 2's convention, its issue 73).
pub fn opted_out(group: &str) -> bool {
    group.ends_with('\u{200b}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_what_xcauth2_keeps() {
        for (raw, clean) in [
            ("a@b.c", "ab.c"),
            ("Tab\tName", "TabName"),
            ("X\u{200b}Y", "XY"),
            ("line\u{2028}sep", "linesep"),
            ("The Team", "The Team"),
            ("non\u{a0}break", "non\u{a0}break"),
            ("Caf\u{e9}", "Caf\u{e9}"),
            ("Cafe\u{301}", "Cafe"),
            ("party \u{1f389}", "party \u{1f389}"),
            // Python's category set has no Lt: titlecase digraphs go.
            ("\u{1c5}x", "x"),
            ("(a-b)_c!+$^", "(a-b)_c!+$^"),
            // ejabberd splits a display list at a literal `\n`: no name keeps one.
            ("Admins\\nAdmins", "AdminsnAdmins"),
            ("A\\\\\\nB\\", "AnB\\"),
            ("A\\\u{200b}nB", "AnB"),
            ("C:\\Users\\Nina", "C:\\Users\\Nina"),
            ("\\N\\t", "\\N\\t"),
        ] {
            assert_eq!(sanitize(raw), clean, "{raw:?}");
        }
    }

    #[test]
    fn jidsplit_uses_the_login_domain_for_bare_uids() {
        assert_eq!(jidsplit("alice", "example.org"), ("alice", "example.org"));
        assert_eq!(
            jidsplit("bob@other.example", "example.org"),
            ("bob", "other.example")
        );
        assert_eq!(jidsplit("a@b@c", "d"), ("a", "b@c"));
        assert_eq!(full_jid("alice", "example.org"), "alice@example.org");
    }

    #[test]
    fn arguments_ejabberdctl_cannot_take() {
        assert_eq!(unpassable("Alice Liddell"), None);
        assert_eq!(
            unpassable("Al\0ice").as_deref(),
            Some("contains a NUL byte")
        );
        for ok in [
            "Tab\tLine\nCR\r",
            "\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}",
        ] {
            assert_eq!(unpassable(ok), None, "{ok:?}");
        }
        for (bad, code) in [
            ("Mal\u{1}lory", "U+0001"),
            ("\u{1b}[31m", "U+001B"),
            ("\u{b}", "U+000B"),
            ("\u{c}", "U+000C"),
            ("x\u{1f}", "U+001F"),
            ("\u{fffe}", "U+FFFE"),
            ("\u{ffff}", "U+FFFF"),
        ] {
            assert_eq!(
                unpassable(bad),
                Some(format!("contains {code}, a character XML does not allow")),
                "{bad:?}"
            );
        }
        assert_eq!(unpassable(&"x".repeat(MAX_ARG_BYTES)), None);
        assert!(unpassable(&"x".repeat(MAX_ARG_BYTES + 1))
            .unwrap()
            .starts_with("is longer"));
        assert!(same_domain("Example.ORG", "example.org"));
        assert!(!same_domain("b.example", "example.org"));
    }
}
