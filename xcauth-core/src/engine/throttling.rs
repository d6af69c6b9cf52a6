//! The glue between a login and the [`Throttle`]: a password is only checked in a slot the
//! throttle grants, and every rejected password (or cached hash that did not match) counts.

use log::debug;

use super::Engine;
use crate::throttle::{Refusal, Slot};

impl Engine {
    /// Before a password is checked: `None` (with a DEBUG line) while the user or the address
    /// is locked out, or while as many checks of this user run as failures are still allowed;
    /// otherwise the slot of this check (ended when dropped).
    pub(super) fn begin_check(
        &self,
        key: &str,
        remote: Option<&str>,
        jid: &str,
    ) -> Option<Slot<'_>> {
        let Some(throttle) = &self.throttle else {
            return Some(Slot::none());
        };
        match throttle.begin(key, remote) {
            Ok(slot) => Some(slot),
            Err(Refusal::Locked(locked)) => {
                debug!(
                    "auth {jid}: {} locked out for {}s more: rejected without checking the \
                     password",
                    locked.scope.as_str(),
                    locked.seconds
                );
                if let Some(m) = &self.metrics {
                    m.throttle_refused();
                }
                None
            }
            Err(Refusal::Busy) => {
                debug!(
                    "auth {jid}: as many checks of this user run already as failures are \
                     allowed: rejected without checking the password"
                );
                if let Some(m) = &self.metrics {
                    m.throttle_refused();
                }
                None
            }
        }
    }

    pub(super) fn count_failure(&self, key: &str, jid: &str, remote: Option<&str>) {
        if let Some(t) = &self.throttle {
            for scope in t.failed(key, jid, remote) {
                if let Some(m) = &self.metrics {
                    m.lockout(scope);
                }
            }
        }
    }

    pub(super) fn count_success(&self, key: &str) {
        if let Some(t) = &self.throttle {
            t.succeeded(key);
        }
    }
}
