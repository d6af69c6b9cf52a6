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
mod tests {
    #[test]
    fn every_option_is_on_the_page() {
        let page = super::render();
        for doc in super::OPTIONS {
            let name = format!("\\fB{}\\fR", super::roff(doc.name));
            assert!(page.contains(&name), "{name}");
        }
        assert!(page.contains("PAM_AUTHINFO_UNAVAIL"));
    }
}
