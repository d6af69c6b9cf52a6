//! The one scripted backend of the engine's tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::backend::{Backend, Target};
use crate::secret::Password;
use crate::vocab::{AuthReply, RosterReply, UserExists};

/// A backend that answers from a script: a queue of the calls the test expects, each with
/// its answer, returned exactly as scripted. A call that is not the next one expected (or
/// comes when none is left) fails the test at once; when the script is dropped, every
/// scripted answer must have been used.
#[derive(Debug, Default)]
pub(super) struct Script {
    expected: Mutex<VecDeque<Expected>>,
    unexpected: Mutex<Vec<String>>,
}

/// One expected call and its answer.
#[derive(Debug)]
enum Expected {
    Auth {
        user: String,
        password: String,
        reply: AuthReply,
    },
    IsUser {
        user: String,
        reply: UserExists,
    },
    Roster {
        user: String,
        authdomain: String,
        reply: RosterReply,
    },
}

impl Script {
    /// Expects `auth` of `user` with `password` next, answered with `reply`.
    pub(super) fn auth(self, user: &str, password: &str, reply: AuthReply) -> Self {
        self.then(Expected::Auth {
            user: user.to_owned(),
            password: password.to_owned(),
            reply,
        })
    }

    /// Expects `auth` of `user` with `password` next, accepted for the account `user`.
    pub(super) fn accept(self, user: &str, password: &str) -> Self {
        let uid = Some(user.to_owned());
        self.auth(user, password, AuthReply::Accepted { uid })
    }

    /// Expects `auth` of `user` with `password` next, rejected.
    pub(super) fn reject(self, user: &str, password: &str) -> Self {
        self.auth(user, password, AuthReply::Rejected)
    }

    /// Expects `isuser` of `user` next, answered with `reply`.
    pub(super) fn isuser(self, user: &str, reply: UserExists) -> Self {
        self.then(Expected::IsUser {
            user: user.to_owned(),
            reply,
        })
    }

    /// Expects `sharedroster` of `user`, asked in `authdomain`, next, answered with `reply`.
    pub(super) fn roster(self, user: &str, authdomain: &str, reply: RosterReply) -> Self {
        self.then(Expected::Roster {
            user: user.to_owned(),
            authdomain: authdomain.to_owned(),
            reply,
        })
    }

    fn then(self, call: Expected) -> Self {
        self.expected.lock().unwrap().push_back(call);
        self
    }

    /// The answer to `call` when `answer` finds it is the next expected one; otherwise the
    /// call is recorded and the test fails here.
    fn next<T>(&self, call: String, answer: impl FnOnce(Expected) -> Option<T>) -> T {
        let next = self.expected.lock().unwrap().pop_front();
        let wrong = match next {
            Some(expected) => {
                let shown = format!("{expected:?}");
                match answer(expected) {
                    Some(reply) => return reply,
                    None => format!("{call}, but the script expects {shown}"),
                }
            }
            None => format!("{call}, but the script is used up"),
        };
        self.unexpected.lock().unwrap().push(wrong.clone());
        panic!("unexpected backend call: {wrong}");
    }
}

impl Backend for Script {
    fn auth(&self, _: &Target, user: &str, password: &Password) -> AuthReply {
        let call = format!("auth({user:?}, {:?})", password.expose());
        self.next(call, |e| match e {
            Expected::Auth {
                user: u,
                password: p,
                reply,
            } if u == user && p == password.expose() => Some(reply),
            _ => None,
        })
    }

    fn isuser(&self, _: &Target, user: &str) -> UserExists {
        self.next(format!("isuser({user:?})"), |e| match e {
            Expected::IsUser { user: u, reply } if u == user => Some(reply),
            _ => None,
        })
    }

    fn sharedroster(&self, target: &Target, user: &str) -> RosterReply {
        let call = format!("sharedroster({user:?}) in {:?}", target.authdomain);
        self.next(call, |e| match e {
            Expected::Roster {
                user: u,
                authdomain,
                reply,
            } if u == user && authdomain == target.authdomain => Some(reply),
            _ => None,
        })
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let unexpected = self.unexpected.get_mut().unwrap();
        assert!(
            unexpected.is_empty(),
            "unexpected backend calls: {unexpected:?}"
        );
        let left = self.expected.get_mut().unwrap();
        assert!(
            left.is_empty(),
            "scripted backend calls never made: {left:?}"
        );
    }
}
