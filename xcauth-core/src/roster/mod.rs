//! The shared roster of ejabberd, fed from Nextcloud groups (`ejabberdctl=`; docs/xcauth2.md
//! §8): after a login, the user's `sharedroster` answer becomes ejabberd shared-roster groups
//! and full names through ejabberdctl, with the state in the shared database kept exactly as
//! xcauth 2 keeps it.
//!
//! - [`sync_roster`]: one sync (the planning and the commands, through the [`Ctl`] seam);
//! - [`state`]: the `rosterinfo` / `rostergroups` rows;
//! - [`sanitize`], [`jidsplit`]: xcauth 2's name rules.
//!
//! Running ejabberdctl (with a timeout) and scheduling syncs off the reply path is the
//! daemon's job.

mod names;
pub mod state;
mod sync;

#[cfg(test)]
mod tests;

pub use names::{full_jid, jidsplit, opted_out, same_domain, sanitize, unpassable, MAX_ARG_BYTES};
pub use sync::{response_hash, sync_roster, Ctl, CtlError, Outcome};
