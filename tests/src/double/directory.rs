//! The accounts of the simulated Nextcloud: users (with app passwords, display names, disabled
//! flag) and groups, with the lookup rules of Nextcloud's database backend.

/// A Nextcloud account, built with [`User::new`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub(crate) uid: String,
    pub(crate) password: String,
    pub(crate) display_name: Option<String>,
    pub(crate) disabled: bool,
    pub(crate) app_passwords: Vec<(String, String)>,
}

impl User {
    /// An enabled account `uid` (stored spelling) with the login password `password`.
    pub fn new(uid: &str, password: &str) -> User {
        User {
            uid: uid.to_owned(),
            password: password.to_owned(),
            display_name: None,
            disabled: false,
            app_passwords: Vec::new(),
        }
    }

    /// Sets the display name (default: the UID).
    #[must_use]
    pub fn display_name(mut self, name: &str) -> User {
        self.display_name = Some(name.to_owned());
        self
    }

    /// Marks the account as disabled.
    #[must_use]
    pub fn disabled(mut self) -> User {
        self.disabled = true;
        self
    }

    /// Adds an app password (device token) created under the login name `login_name`. It is
    /// accepted only when the login name tried is exactly (case-sensitively) `login_name`.
    #[must_use]
    pub fn app_password(mut self, login_name: &str, password: &str) -> User {
        self.app_passwords
            .push((login_name.to_owned(), password.to_owned()));
        self
    }

    /// The stored UID.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The display name, falling back to the UID.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.uid)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) gid: String,
    pub(crate) display_name: String,
    pub(crate) members: Vec<String>,
}

/// Outcome of `IUserSession::login()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login {
    /// Logged in as this UID.
    Success(String),
    /// Wrong credentials.
    Failed,
    /// Right credentials, disabled account: `LoginException("User disabled")`.
    Disabled,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Directory {
    pub(crate) users: Vec<User>,
    pub(crate) groups: Vec<Group>,
}

/// `LOWER(uid) = LOWER(?)` on raw request bytes: no match when they are not UTF-8.
fn same_uid(stored: &str, asked: &[u8]) -> bool {
    match std::str::from_utf8(asked) {
        Ok(asked) => stored == asked || stored.to_lowercase() == asked.to_lowercase(),
        Err(_) => false,
    }
}

impl Directory {
    /// `IUserManager::get()`: case-insensitive, returns the stored account.
    pub(crate) fn get(&self, name: &[u8]) -> Option<&User> {
        self.users.iter().find(|u| same_uid(&u.uid, name))
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut User> {
        self.users
            .iter_mut()
            .find(|u| same_uid(&u.uid, name.as_bytes()))
    }

    /// Adds or replaces (same UID, case-insensitively) an account.
    pub(crate) fn add_user(&mut self, user: User) {
        match self.get_mut(&user.uid.clone()) {
            Some(existing) => *existing = user,
            None => self.users.push(user),
        }
    }

    pub(crate) fn remove_user(&mut self, uid: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| !same_uid(&u.uid, uid.as_bytes()));
        before != self.users.len()
    }

    /// Adds or replaces (same GID) a group.
    pub(crate) fn add_group(&mut self, gid: &str, display_name: &str, members: &[&str]) {
        let group = Group {
            gid: gid.to_owned(),
            display_name: display_name.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        match self.groups.iter_mut().find(|g| g.gid == gid) {
            Some(existing) => *existing = group,
            None => self.groups.push(group),
        }
    }

    pub(crate) fn remove_group(&mut self, gid: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|g| g.gid != gid);
        before != self.groups.len()
    }

    /// `IUserSession::login(login_name, password)`: app password bound to the exact login name
    /// first, then the account password; a disabled account with the right credentials throws.
    pub(crate) fn login(&self, login_name: &[u8], password: &[u8]) -> Login {
        let token_user = self.users.iter().find(|u| {
            u.app_passwords
                .iter()
                .any(|(name, pw)| pw.as_bytes() == password && name.as_bytes() == login_name)
        });
        let user = match token_user {
            Some(u) => Some(u),
            None => self
                .get(login_name)
                .filter(|u| u.password.as_bytes() == password),
        };
        match user {
            None => Login::Failed,
            Some(u) if u.disabled => Login::Disabled,
            Some(u) => Login::Success(u.uid.clone()),
        }
    }

    /// The groups of `uid` in backend order (the order they were added), each with its members
    /// (existing accounts only, stored spelling) in UID order.
    pub(crate) fn groups_of(&self, uid: &str) -> Vec<(&Group, Vec<&User>)> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| same_uid(uid, m.as_bytes())))
            .map(|g| {
                let mut members: Vec<&User> = g
                    .members
                    .iter()
                    .filter_map(|m| self.get(m.as_bytes()))
                    .collect();
                members.sort_by(|a, b| a.uid.as_bytes().cmp(b.uid.as_bytes()));
                members.dedup_by(|a, b| a.uid == b.uid);
                (g, members)
            })
            .collect()
    }
}
