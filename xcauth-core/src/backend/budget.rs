//! The time budget of one PAM call, shared by every backend request it makes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// The time budget of one caller-defined call (a PAM call), started when the caller says so
/// (after the password was typed: the user's typing time is not the backend's).
#[derive(Debug)]
pub struct CallBudget {
    length: Duration,
    clock: Arc<dyn Clock>,
    end: OnceLock<Instant>,
}

impl CallBudget {
    /// A budget of `length` measured by `clock`, not started yet.
    pub fn new(length: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            length,
            clock,
            end: OnceLock::new(),
        }
    }

    /// Starts the budget (once; later calls change nothing).
    pub fn start(&self) {
        let _ = self.end();
    }

    /// When the budget runs out: started now if nobody started it yet.
    pub fn end(&self) -> Instant {
        *self.end.get_or_init(|| self.clock.instant() + self.length)
    }
}
