//! Types that hold secrets: they never print, and they are wiped on drop.
//!
//! `Debug` is implemented by hand and redacts; there is deliberately no
//! `Display`. Code that needs the bytes calls [`Secret::expose`] or
//! [`Password::expose`], which makes every use greppable.

use std::fmt;

use zeroize::Zeroizing;

/// The shared API secret of a Nextcloud JSXC endpoint (HMAC key).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret. The caller's copy should be dropped promptly.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret text, for computing MACs. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given (an empty HMAC key is a configuration error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A password (or time-limited token, or app password) presented by a user.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The password text, for the backend request, token check or bcrypt.
    /// Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (UTF-8), which is what bcrypt's 72-byte limit counts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty password.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("topsecret-value");
        let p = Password::new("hunter2-password");
        let out = format!("{s:?} {p:?} {:#?}", (&s, &p));
        assert!(!out.contains("topsecret"), "{out}");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("redacted"));
    }

    #[test]
    fn expose_returns_the_value() {
        assert_eq!(Secret::new("k").expose(), "k");
        assert_eq!(Password::new("pä").len(), 3);
    }
}
