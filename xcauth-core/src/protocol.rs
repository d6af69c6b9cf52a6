//! The one table of protocol names: what `-t`, the `PROTO@` of `listen=` and a systemd
//! socket's `FileDescriptorName` say. The codec's [`crate::codec::Framing`] and xcauthd's
//! listener services are derived from it.

use std::fmt;
use std::str::FromStr;

/// A wire framing (`-t`, the `PROTO@` of `listen`, a systemd socket's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Line based `verb:user:domain:password` (docs/protocols.md §3).
    Generic,
    /// Prosody's `mod_auth_external`; the same framing as [`Protocol::Generic`].
    Prosody,
    /// ejabberd's length-prefixed extauth (1.2).
    Ejabberd,
    /// saslauthd's counted strings (1.3).
    Saslauthd,
    /// Postfix `tcp_table` lookups (1.4).
    Postfix,
    /// The `socket=` protocol of `pam_xcauth.so` (listeners on Unix sockets only;
    /// not a `-t` type).
    Pam,
}

impl Protocol {
    /// All protocols, in the order help and messages list them.
    pub const ALL: [Protocol; 5] = [
        Self::Generic,
        Self::Prosody,
        Self::Ejabberd,
        Self::Saslauthd,
        Self::Postfix,
    ];

    /// The name used in options and systemd socket names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Prosody => "prosody",
            Self::Ejabberd => "ejabberd",
            Self::Saslauthd => "saslauthd",
            Self::Postfix => "postfix",
            Self::Pam => "pam",
        }
    }

    /// The TCP port of the shipped socket units (docs/protocols.md §1); none for `pam`,
    /// which is served on Unix sockets only.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Generic | Self::Prosody => 23663,
            Self::Ejabberd => 23662,
            Self::Postfix => 23665,
            Self::Saslauthd => 23666,
            Self::Pam => 0,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// Exact and lower-case. The error lists the `-t` types (`pam` is not one).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == Self::Pam.as_str() {
            return Ok(Self::Pam);
        }
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                let (last, rest) = names.split_last().unwrap_or((&"", &[]));
                format!(
                    "expected one of {} or {last}, got '{text}'",
                    rest.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Protocol::Generic.default_port(), 23663);
        assert_eq!(Protocol::Prosody.default_port(), 23663);
        assert_eq!(Protocol::Ejabberd.default_port(), 23662);
        assert_eq!(Protocol::Postfix.default_port(), 23665);
        assert_eq!(Protocol::Saslauthd.default_port(), 23666);
        assert_eq!(
            "Prosody".parse::<Protocol>().unwrap_err(),
            "expected one of generic, prosody, ejabberd, saslauthd or postfix, got 'Prosody'"
        );
    }
}
