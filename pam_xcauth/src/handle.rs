//! The seam between the decision flow and libpam: [`Handle`] is everything the flow asks of a
//! PAM handle. The real implementation wraps pamsm's safe `PamLibExt` methods; unit tests use
//! a scripted fake.

use std::ffi::CStr;

use pamsm::{LogLvl, Pam, PamError, PamLibExt};
use xcauth_core::Password;

use crate::logging::{Level, SyslogSink};

/// Name of the `pam_set_data` entry that records "this handle's user was authenticated by
/// pam_xcauth" (its value: the user name as authenticated; empty after a failure).
pub const MARKER: &str = "pam_xcauth_authenticated";

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
    /// Records the authenticated user (empty: none) with `pam_set_data`.
    fn set_marker(&self, user: &str) -> Result<(), PamError>;
    /// The user recorded by [`Handle::set_marker`] on this handle, if any.
    fn marker(&self) -> Option<String>;
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

    fn set_marker(&self, user: &str) -> Result<(), PamError> {
        self.send_bytes(MARKER, user.as_bytes().to_vec(), None)
    }

    fn marker(&self) -> Option<String> {
        let bytes = self.retrieve_bytes(MARKER).ok()?;
        String::from_utf8(bytes).ok().filter(|u| !u.is_empty())
    }
}
