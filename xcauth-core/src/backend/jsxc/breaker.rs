//! The client's circuit breaker: one per backend URL, timed by the client's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::warn;

use crate::clock::Clock;

/// A circuit breaker per backend URL: after `threshold` consecutive transport
/// failures, calls are skipped for `cooldown`; then one probe goes through.
#[derive(Debug)]
pub(super) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<HashMap<String, BreakerState>>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    /// A breaker that opens after `threshold` failures (0: never) for `cooldown`, as
    /// measured by `clock`.
    pub(super) fn new(threshold: u32, cooldown: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            threshold,
            cooldown,
            clock,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// True when a call to `url` may go ahead.
    pub(super) fn allow(&self, url: &str) -> bool {
        if self.threshold == 0 {
            return true;
        }
        let mut map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(st) = map.get_mut(url) else {
            return true;
        };
        match st.open_until {
            Some(until) if self.clock.instant() < until => false,
            Some(_) => {
                // Half-open: let this one probe through; a failure re-opens.
                st.open_until = None;
                st.failures = self.threshold.saturating_sub(1);
                true
            }
            None => true,
        }
    }

    /// The URLs whose breaker is open now (sorted), for the counters.
    pub(super) fn open_urls(&self) -> Vec<String> {
        let now = self.clock.instant();
        let map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut urls: Vec<String> = map
            .iter()
            .filter(|(_, st)| st.open_until.is_some_and(|until| now < until))
            .map(|(url, _)| url.clone())
            .collect();
        urls.sort();
        urls
    }

    /// Records how a call to `url` went (`ok`: the backend answered).
    pub(super) fn record(&self, url: &str, ok: bool) {
        if self.threshold == 0 {
            return;
        }
        let mut map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let st = map.entry(url.to_owned()).or_default();
        if ok {
            if st.failures >= self.threshold {
                warn!("circuit breaker for {url} closed: backend answers again");
            }
            st.failures = 0;
            st.open_until = None;
        } else {
            st.failures = st.failures.saturating_add(1);
            if st.failures >= self.threshold && st.open_until.is_none() {
                warn!(
                    "circuit breaker for {url} open after {} consecutive failures; skipping calls for {:?}",
                    st.failures, self.cooldown
                );
                st.open_until = Some(self.clock.instant() + self.cooldown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn breaker_opens_and_probes() {
        let clock = Arc::new(ManualClock::at(1_700_000_000));
        let b = Breaker::new(2, Duration::from_millis(50), clock.clone());
        assert!(b.allow("u"));
        b.record("u", false);
        assert!(b.allow("u"));
        b.record("u", false);
        assert!(!b.allow("u"), "open after 2 failures");
        assert_eq!(b.open_urls(), ["u"]);
        assert!(b.allow("other"), "per URL");
        clock.advance_by(Duration::from_millis(49));
        assert!(!b.allow("u"), "open until the cooldown is over");
        assert_eq!(b.open_urls(), ["u"]);
        clock.advance_by(Duration::from_millis(1));
        assert!(b.open_urls().is_empty(), "the cooldown is over");
        assert!(b.allow("u"), "half-open probe");
        b.record("u", true);
        assert!(b.allow("u"));
        // A failed probe opens it again at once, for a whole cooldown.
        b.record("u", false);
        b.record("u", false);
        assert!(!b.allow("u"));
        clock.advance_by(Duration::from_millis(50));
        assert!(b.allow("u"), "half-open probe");
        b.record("u", false);
        assert!(!b.allow("u"), "a failed probe re-opens");
        clock.advance_by(Duration::from_millis(49));
        assert!(!b.allow("u"));
        clock.advance_by(Duration::from_millis(1));
        assert!(b.allow("u"));
    }
}
