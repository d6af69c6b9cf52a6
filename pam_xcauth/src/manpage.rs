//! pam_xcauth(8), generated from the module's option table ([`OPTIONS`]), so the page
//! cannot drift from what [`crate::options::parse`] accepts. Printed by
//! `cargo run -p pam_xcauth --example pam_xcauth-man` (the Debian package build runs it).

use std::fmt::Write as _;

use crate::options::OPTIONS;

fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// pam_xcauth(8) in roff, from [`OPTIONS`].
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".\\\" Generated from pam_xcauth's option table; do not edit.\n\
         .TH PAM_XCAUTH 8 \"\" \"xcauth-rs {}\" \"System Administration\"\n\
         .SH NAME\npam_xcauth \\- PAM module checking passwords against Nextcloud (JSXC)\n\
         .SH SYNOPSIS\n\\fBauth\\fR \\fIcontrol\\fR \\fBpam_xcauth.so\\fR [\\fIoptions\\fR]\n\
         .br\n\\fBaccount\\fR \\fIcontrol\\fR \\fBpam_xcauth.so\\fR [\\fIoptions\\fR]\n\
         .SH DESCRIPTION\n\\fBpam_xcauth.so\\fR checks a password, or a JSXC time\\-limited token, \
         against the JSXC external API of a Nextcloud server, either in\\-process with the \
         settings of \\fBxcauth.conf\\fR(5) or through \\fBxcauthd\\fR(8) on a Unix socket \
         (\\fBsocket=\\fR). An unknown option is an error (PAM_SERVICE_ERR).\n.SH OPTIONS",
        xcauth_core::VERSION
    );
    for doc in OPTIONS {
        let tag = match doc.value {
            Some(v) => format!("\\fB{}\\fR=\\fI{}\\fR", roff(doc.name), roff(v)),
            None => format!("\\fB{}\\fR", roff(doc.name)),
        };
        let _ = writeln!(out, ".TP\n{tag}\n{}.", roff(doc.help));
    }
    out.push_str(
        ".SH RETURN VALUES\n.TP\nPAM_SUCCESS\nthe password or token was accepted\n\
         .TP\nPAM_AUTH_ERR\nthe password was refused\n\
         .TP\nPAM_USER_UNKNOWN\nno such user, or a domain this service does not serve\n\
         .TP\nPAM_AUTHINFO_UNAVAIL\nNextcloud or xcauthd could not be asked\n\
         .TP\nPAM_SERVICE_ERR\na bad option or an unsafe settings file\n\
         .TP\nPAM_IGNORE\naccount management for a user this module did not authenticate\n\
         .SH FILES\n/etc/xcauth.conf, /usr/share/pam\\-configs/xcauth, \
         /usr/share/doc/xcauth/pam.d\\-examples/\n\
         .SH SEE ALSO\n\\fBxcauthd\\fR(8), \\fBxcauth.conf\\fR(5), \\fBpam.conf\\fR(5), \
         \\fBpam\\-auth\\-update\\fR(8)\n",
    );
    out
}

#[cfg(test)]
#[allow(clippy::panic)] // tests: a panic is a failed test
mod tests {
    use std::collections::BTreeMap;

    use crate::options::accepted::{self, Shape};
    use crate::options::parse;

    /// Undoes [`super::roff`]'s escapes.
    fn unroff(text: &str) -> String {
        text.replace("\\-", "-").replace("\\e", "\\")
    }

    /// The options the rendered page shows (the tags after `.TP` in `.SH OPTIONS`), with
    /// their value placeholders.
    fn page_options(page: &str) -> BTreeMap<String, Option<String>> {
        let section = page
            .split_once(".SH OPTIONS\n")
            .expect("an OPTIONS section")
            .1;
        let section = section.split_once("\n.SH ").map_or(section, |(s, _)| s);
        let mut found = BTreeMap::new();
        let mut lines = section.lines();
        while let Some(line) = lines.next() {
            if line != ".TP" {
                continue;
            }
            let tag = unroff(lines.next().expect("a tag after .TP"));
            let (name, value) = match tag.split_once("\\fR=\\fI") {
                Some((name, value)) => (name, Some(value.strip_suffix("\\fR").expect(&tag))),
                None => (tag.strip_suffix("\\fR").expect(&tag), None),
            };
            let name = name.strip_prefix("\\fB").expect(&tag);
            let fresh = found.insert(name.to_owned(), value.map(str::to_owned));
            assert!(fresh.is_none(), "{name} twice on the page");
        }
        found
    }

    /// The options docs/pam.md §3 lists (first column of its table).
    fn doc_options(doc: &str) -> BTreeMap<String, (Shape, String)> {
        let section = doc
            .split_once("\n## 3 Options\n")
            .expect("docs/pam.md §3")
            .1;
        let section = section.split_once("\n## ").map_or(section, |(s, _)| s);
        let mut found = BTreeMap::new();
        for row in section.lines().filter_map(|l| l.strip_prefix("| `")) {
            let (cell, meaning) = row.split_once("` | ").expect(row);
            let (name, shape) = match cell.split_once('=') {
                Some((name, _)) => (name, Shape::Value),
                None => (cell, Shape::Flag),
            };
            let fresh = found.insert(name.to_owned(), (shape, meaning.to_owned()));
            assert!(fresh.is_none(), "{name} twice in docs/pam.md");
        }
        found
    }

    /// A valid value for a placeholder the page shows.
    fn example(placeholder: &str) -> &'static str {
        match placeholder {
            "PATH" => "/etc/xcauth-test/file",
            "USER" => "xcauth",
            "SECONDS" => "15",
            "DOMAIN[,DOMAIN...]" => "example.org,example.net",
            "GROUP[,GROUP...]" => "staff,Team A",
            other => panic!("no example value for the placeholder {other}: add one here"),
        }
    }

    #[test]
    fn every_option_is_on_the_page() {
        let page = super::render();
        for doc in super::OPTIONS {
            let name = format!("\\fB{}\\fR", super::roff(doc.name));
            assert!(page.contains(&name), "{name}");
        }
        assert!(page.contains("PAM_AUTHINFO_UNAVAIL"));
    }

    /// What the page shows parses, in the shown form, and everything the parser takes is on
    /// the page (its test hooks excepted).
    #[test]
    fn the_page_and_the_parser_agree_both_ways() {
        let shown = page_options(&super::render());
        for (name, placeholder) in &shown {
            let arg = match placeholder {
                Some(p) => format!("{name}={}", example(p)),
                None => name.clone(),
            };
            assert_eq!(parse(std::slice::from_ref(&arg)).1, vec![], "{arg}");
        }
        let accepted = accepted::options();
        for (name, shape) in &accepted {
            if accepted::TEST_ONLY.contains(&name.as_str()) {
                assert!(!shown.contains_key(name), "test hook {name} on the page");
                continue;
            }
            let on_page = shown
                .get(name)
                .unwrap_or_else(|| panic!("{name} is parsed but not on the page"));
            assert_eq!(on_page.is_some(), *shape == Shape::Value, "{name}");
        }
        assert!(shown.keys().all(|n| accepted.contains_key(n)), "{shown:?}");
    }

    /// docs/pam.md §3 lists exactly what the parser takes, in the right form; the test hooks
    /// are marked as such.
    #[test]
    fn the_docs_and_the_parser_agree_both_ways() {
        let documented = doc_options(include_str!("../../docs/pam.md"));
        let accepted = accepted::options();
        for (name, (shape, meaning)) in &documented {
            assert_eq!(accepted::shape(name), Some(*shape), "{name} in docs/pam.md");
            assert_eq!(
                accepted::TEST_ONLY.contains(&name.as_str()),
                meaning.starts_with("tests only"),
                "{name}: {meaning}"
            );
        }
        for name in accepted.keys() {
            assert!(
                documented.contains_key(name),
                "{name} is parsed but not in docs/pam.md §3"
            );
        }
    }
}
