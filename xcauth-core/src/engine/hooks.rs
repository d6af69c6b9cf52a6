//! What runs after an accepted login: the shared-roster sync plugs in here.

use std::fmt;

use super::Engine;
use crate::backend::Target;

/// Runs after every accepted login (token, cache or backend; not on the
/// unreachable path). The shared-roster sync plugs in here; it must not block
/// the reply for long.
pub trait AfterLogin: Send + Sync + fmt::Debug {
    /// Called with the resolved target, user and XMPP domain.
    fn after_login(&self, engine: &Engine, target: &Target, user: &str, domain: &str);
}

impl Engine {
    pub(super) fn run_after_login(&self, target: &Target, user: &str, domain: &str) {
        if let Some(hook) = &self.after_login {
            hook.after_login(self, target, user, domain);
        }
    }
}
