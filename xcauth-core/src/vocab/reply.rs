//! A backend's answers: accepted, rejected (or no such user), or unavailable.

use super::Unavailable;

/// The backend's answer to `auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthReply {
    /// `{"result":"success","data":{"uid":…}}`: `uid` is the Nextcloud account
    /// that actually logged in (Nextcloud tries `user@domain`, then `user`), or
    /// `None` when the reply did not name it.
    Accepted {
        /// The account that logged in, as the backend spells it.
        uid: Option<String>,
    },
    /// `{"result":"noauth"}` or any other truthy, non-`error` result.
    Rejected,
    /// Everything else (docs/jsxc-api.md §5.2): take the cache's unreachable path.
    Unavailable(Unavailable),
}

/// The backend's answer to `isuser`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserExists {
    /// `isUser` is `true`, `1` or `"1"`.
    Yes,
    /// `isUser` is `false`, `0`, `"0"`, `""` or `null`.
    No,
    /// No usable answer.
    Unknown(Unavailable),
}

/// One entry of a shared roster: a Nextcloud UID with display name and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The Nextcloud UID (may contain `@`).
    pub uid: String,
    /// Display name, if the backend sent one.
    pub name: Option<String>,
    /// Group display names, in backend order.
    pub groups: Vec<String>,
}

/// A successful `sharedroster` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRoster {
    /// Entries in the order the backend sent them. Empty for `[]` and `{}`.
    pub entries: Vec<RosterEntry>,
    /// The raw response body (what `-R` and `roster:` print; hashed for the sync).
    pub body: String,
}

/// The backend's answer to `sharedroster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterReply {
    /// A usable roster.
    Roster(SharedRoster),
    /// No usable answer (includes the 500 "Can't find user").
    Unavailable(Unavailable),
}
