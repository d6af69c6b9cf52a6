//! The questions besides a login: does a user exist, a user's shared roster, an account's
//! groups. No token, no cache: each is one backend call (timed and counted).

use log::{debug, info};

use super::route::Route;
use super::Engine;
use crate::backend::Target;
use crate::logsafe;
use crate::metrics::BackendOp;
use crate::vocab::{RosterReply, Unavailable, UserExists};

impl Engine {
    /// Asks the backend whether `user@domain` exists. No cache, no token.
    /// A name in a domain that is not served does not exist.
    pub fn isuser(&self, user: &str, domain: &str) -> UserExists {
        let jid = logsafe::jid(user, domain);
        let answer = if domain.contains('@') || domain.ends_with('.') {
            UserExists::No
        } else {
            match self.route(domain) {
                Ok(Route::Serve(target)) => self.timed(
                    BackendOp::IsUser,
                    || self.backend.isuser(&target, user),
                    |r| match r {
                        UserExists::Unknown(why) => Some(why),
                        _ => None,
                    },
                ),
                Ok(Route::NotServed) => {
                    debug!("isuser {jid}: domain not served here");
                    UserExists::No
                }
                Err(why) => UserExists::Unknown(why),
            }
        };
        match &answer {
            UserExists::Yes => info!("isuser {jid}: exists"),
            UserExists::No => info!("isuser {jid}: does not exist"),
            UserExists::Unknown(why) => info!("isuser {jid}: unknown ({why})"),
        }
        answer
    }

    fn timed_roster(&self, target: &Target, user: &str) -> RosterReply {
        self.timed(
            BackendOp::Roster,
            || self.backend.sharedroster(target, user),
            |r| match r {
                RosterReply::Unavailable(why) => Some(why),
                RosterReply::Roster(_) => None,
            },
        )
    }

    /// Fetches the shared roster of `user@domain`.
    pub fn roster(&self, user: &str, domain: &str) -> RosterReply {
        match self.target(domain) {
            Ok(target) => self.timed_roster(&target, user),
            Err(why) => RosterReply::Unavailable(why),
        }
    }

    /// The Nextcloud groups of exactly the account `uid` (as [`crate::vocab::Login::uid`]
    /// names it) on the backend serving `domain`.
    ///
    /// The roster is asked for `uid` with an empty domain, so Nextcloud looks
    /// up that account and no other (with a domain it would try `uid@domain`
    /// first), and only the entry spelled exactly `uid` counts: an account
    /// `dave` is never credited with the groups of `dave@example.org`.
    pub fn groups_of_account(&self, uid: &str, domain: &str) -> Result<Vec<String>, Unavailable> {
        let mut target = self.target(domain)?;
        target.authdomain = String::new();
        let roster = match self.timed_roster(&target, uid) {
            RosterReply::Roster(r) => r,
            RosterReply::Unavailable(why) => return Err(why),
        };
        Ok(roster
            .entries
            .iter()
            .find(|e| e.uid == uid)
            .map(|e| e.groups.clone())
            .unwrap_or_default())
    }
}
