//! The seam between the decision flow and libpam: [`Handle`] is everything the flow asks of a
//! PAM handle. The real implementation wraps pamsm's safe `PamLibExt` methods; unit tests use
//! a scripted fake.

use std::ffi::CStr;

use pamsm::{LogLvl, Pam, PamError, PamLibExt};
use xcauth_core::Password;

use crate::logging::{Level, SyslogSink};

/// Name of the `pam_set_data` entry that records "this handle's user was authenticated by
/// pam_xcauth" (its value: an encoded [`Marker`]; empty after a failure).
pub const MARKER: &str = "pam_xcauth_authenticated";

/// What a successful `pam_sm_authenticate` records on the handle for `pam_sm_acct_mgmt`: who
/// was authenticated, as which Nextcloud account, and which of the auth line's `group=` groups
/// the user was found in. An account line with `group=` skips its own group check only when
/// one of these groups is also one of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marker {
    /// The PAM user name as authenticated (`PAM_USER`). Empty: nobody (cleared).
    pub name: String,
    /// The Nextcloud user (local part).
    pub user: String,
    /// The XMPP domain the user was authenticated in.
    pub domain: String,
    /// The Nextcloud account that logged in, when known (empty: unknown).
    pub uid: String,
    /// The groups of the auth line's `group=` that the user is a member of (empty without
    /// `group=`).
    pub groups: Vec<String>,
}

impl Marker {
    /// The stored form: the fields separated by NUL bytes, groups last. None of them can hold
    /// a NUL: the name, the domain= option and the group= names all come from C strings (the
    /// groups are the auth line's own names, not what the backend sent), and a uid holding a
    /// NUL is dropped when the backend's reply is read.
    pub fn encode(&self) -> Vec<u8> {
        if self.name.is_empty() {
            return Vec::new();
        }
        let mut fields = vec![
            self.name.as_str(),
            self.user.as_str(),
            self.domain.as_str(),
            self.uid.as_str(),
        ];
        fields.extend(self.groups.iter().map(String::as_str));
        fields.join("\0").into_bytes()
    }

    /// The marker stored by [`Marker::encode`]; `None` when cleared or unreadable (the caller
    /// then treats the handle as not authenticated by us, which is the safe side).
    pub fn decode(bytes: &[u8]) -> Option<Marker> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split('\0');
        let name = fields.next().filter(|n| !n.is_empty())?.to_owned();
        let user = fields.next().filter(|u| !u.is_empty())?.to_owned();
        let domain = fields.next().filter(|d| !d.is_empty())?.to_owned();
        let uid = fields.next()?.to_owned();
        Some(Marker {
            name,
            user,
            domain,
            uid,
            groups: fields.map(str::to_owned).collect(),
        })
    }
}

/// Why an item could not be read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ItemError {
    /// libpam returned this error (passed on to the application).
    Pam(PamError),
    /// libpam returned no value.
    Missing,
    /// The value is not UTF-8.
    NotUtf8,
}

/// What the flow needs from a PAM handle.
pub trait Handle: SyslogSink {
    /// `PAM_SERVICE`, for log lines.
    fn service(&self) -> Option<String>;
    /// `PAM_RHOST`, for log lines.
    fn rhost(&self) -> Option<String>;
    /// The user: `pam_get_user` (`PAM_USER`, prompting only if the application set none).
    fn user(&self) -> Result<String, ItemError>;
    /// The password with `pam_get_authtok` semantics: the stacked `PAM_AUTHTOK` if set;
    /// otherwise `PAM_AUTH_ERR` under `use_first_pass`; otherwise a `Password: ` prompt whose
    /// answer libpam stores as `PAM_AUTHTOK` for the modules below.
    fn authtok(&self) -> Result<Password, ItemError>;
    /// Records the authenticated user (a default [`Marker`]: none) with `pam_set_data`.
    fn set_marker(&self, marker: &Marker) -> Result<(), PamError>;
    /// The marker recorded by [`Handle::set_marker`] on this handle, if any.
    fn marker(&self) -> Option<Marker>;
}

fn text(item: Result<Option<&CStr>, PamError>) -> Result<String, ItemError> {
    match item {
        Ok(Some(c)) => c
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ItemError::NotUtf8),
        Ok(None) => Err(ItemError::Missing),
        Err(e) => Err(ItemError::Pam(e)),
    }
}

impl SyslogSink for Pam {
    fn pam_syslog(&self, level: Level, msg: &str) {
        let lvl = match level {
            Level::Crit => LogLvl::CRIT,
            Level::Err => LogLvl::ERR,
            Level::Warning => LogLvl::WARNING,
            Level::Notice => LogLvl::NOTICE,
            Level::Info => LogLvl::INFO,
            Level::Debug => LogLvl::DEBUG,
        };
        // Fails only for a message with a NUL byte, which `Logger` has already replaced.
        let _ = self.syslog(lvl, msg);
    }
}

impl Handle for Pam {
    fn service(&self) -> Option<String> {
        text(self.get_service()).ok()
    }

    fn rhost(&self) -> Option<String> {
        text(self.get_rhost()).ok().filter(|h| !h.is_empty())
    }

    fn user(&self) -> Result<String, ItemError> {
        text(self.get_user(None))
    }

    fn authtok(&self) -> Result<Password, ItemError> {
        // The `&CStr` points at libpam's copy of the item; it is copied straight into a
        // zeroize-on-drop `Password` and never into another `String`.
        match self.get_authtok(None) {
            Ok(Some(c)) => match c.to_str() {
                Ok(s) => Ok(Password::new(s)),
                Err(_) => Err(ItemError::NotUtf8),
            },
            Ok(None) => Err(ItemError::Missing),
            Err(e) => Err(ItemError::Pam(e)),
        }
    }

    fn set_marker(&self, marker: &Marker) -> Result<(), PamError> {
        self.send_bytes(MARKER, marker.encode(), None)
    }

    fn marker(&self) -> Option<Marker> {
        Marker::decode(&self.retrieve_bytes(MARKER).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::Marker;

    #[test]
    fn markers_round_trip_and_bad_ones_count_as_none() {
        let m = Marker {
            name: "alice".into(),
            user: "alice".into(),
            domain: "example.org".into(),
            uid: "alice@example.org".into(),
            groups: vec!["Team A".into(), "Ops,Dev".into()],
        };
        assert_eq!(Marker::decode(&m.encode()), Some(m.clone()));
        let unknown_uid = Marker {
            uid: String::new(),
            ..m.clone()
        };
        assert_eq!(Marker::decode(&unknown_uid.encode()), Some(unknown_uid));
        let bare = Marker {
            groups: vec![],
            ..m
        };
        assert_eq!(Marker::decode(&bare.encode()), Some(bare));
        assert_eq!(Marker::default().encode(), b"");
        for bad in [
            &b""[..],
            b"alice",
            b"alice\0alice",
            b"alice\0alice\0example.org",
            b"\0a\0b",
            b"a\0\0b",
            b"\xff\0a\0b",
        ] {
            assert_eq!(Marker::decode(bad), None, "{bad:?}");
        }
    }
}
