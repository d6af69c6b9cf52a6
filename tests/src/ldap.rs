//! OpenLDAP behind a test's [`Nextcloud`]: a throwaway `slapd` in the foreground on loopback
//! with a config file and database of its own (nothing under `/etc/ldap` is used but the
//! schema files), holding a few people ([`JDOE`], [`ASMITH`]), and Nextcloud's `user_ldap` app
//! pointed at it through `occ ldap:*` ([`connect_nextcloud`]). The directory can be stopped
//! and started again on the same port to show Nextcloud during an LDAP outage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    clippy::print_stderr
)] // test support

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::machine::{reserve_port, PortLease};
use crate::nextcloud::Nextcloud;
use crate::support::{require_program, Proc};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// Where the people are.
pub const PEOPLE_BASE: &str = "ou=people,dc=example,dc=org";
/// The directory's administrator (Nextcloud binds as it to search).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "ldap-admin-Pass-2026";

/// A person in the directory (`inetOrgPerson`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// `uid`, the login name.
    pub uid: &'static str,
    /// `cn`, Nextcloud's display name.
    pub cn: &'static str,
    /// `mail`, also a login name (the login filter matches uid or mail).
    pub mail: &'static str,
    /// `userPassword` (stored as a salted SHA-1 hash).
    pub password: &'static str,
}

/// Jane Doe, `jdoe`, `jane@example.org`.
pub const JDOE: Person = Person {
    uid: "jdoe",
    cn: "Jane Doe",
    mail: "jane@example.org",
    password: "jane-Pass-2026",
};
/// Ånna Smïth, `asmith`: a display name and a password that are not ASCII.
pub const ASMITH: Person = Person {
    uid: "asmith",
    cn: "Ånna Smïth",
    mail: "anna@example.org",
    password: "Änna-Pässwört-2026",
};
/// Everyone in the directory.
pub const PEOPLE: [Person; 2] = [JDOE, ASMITH];

/// How the accounts Nextcloud makes for LDAP people are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountIds {
    /// Nextcloud's default: the entry's `entryUUID`.
    Uuid,
    /// `ldapExpertUsernameAttr uid`, set before anyone is first seen: the `uid`.
    Uid,
}

/// A running `slapd -d 0` (stopped on drop).
#[derive(Debug)]
pub struct Slapd {
    proc: Option<Proc>,
    dir: PathBuf,
    /// The port slapd binds, this directory's from start to drop (also while it is stopped, so
    /// nothing else answers there during an outage).
    lease: PortLease,
}

impl Slapd {
    /// Makes a directory in `dir` (created), starts slapd and adds [`PEOPLE`].
    pub fn start(dir: &Path) -> Slapd {
        for program in ["slapd", "slappasswd", "ldapadd", "ldapsearch"] {
            require_program(program);
        }
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             database mdb\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {hash}\n\
             directory {dir}/db\n",
            dir = dir.display(),
            hash = slappasswd(ROOT_PW),
        );
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let mut slapd = Slapd {
            proc: None,
            dir: dir.to_path_buf(),
            lease: reserve_port(),
        };
        slapd.run();
        slapd.add(&people_ldif());
        slapd
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    fn run(&mut self) {
        let log_path = self.dir.join("slapd.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = Command::new("slapd");
        cmd.arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .args(["-h", &format!("ldap://{}/", self.lease.addr()), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut proc = Proc::spawn("slapd", &mut cmd).with_log(&log_path);
        proc.wait_for_tcp(self.lease.addr(), Duration::from_secs(60));
        self.proc = Some(proc);
    }

    /// Stops slapd (SIGTERM, and waits for it): the directory is down.
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.signal("TERM");
            assert!(
                proc.wait_exit(Duration::from_secs(30)).is_some(),
                "slapd did not stop on SIGTERM"
            );
        }
    }

    /// Starts slapd again on the same port with the same database.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "slapd still runs");
        self.run();
    }

    /// `entryUUID` of the person with this uid.
    pub fn entry_uuid(&self, uid: &str) -> String {
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-o", "nettimeout=30", "-H", &self.url()])
            .args(["-D", ROOT_DN, "-w", ROOT_PW, "-b", PEOPLE_BASE])
            .arg(format!("(uid={uid})"))
            .arg("entryUUID")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("entryUUID: "))
            .unwrap_or_else(|| panic!("no entryUUID for {uid}: {text}"))
            .to_owned()
    }

    fn add(&self, ldif: &str) {
        let path = self.dir.join("add.ldif");
        std::fs::write(&path, ldif).unwrap();
        let out = Command::new("ldapadd")
            .args(["-x", "-o", "nettimeout=30", "-H", &self.url()])
            .args(["-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapadd: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn slappasswd(password: &str) -> String {
    let out = Command::new("slappasswd")
        .args(["-s", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "slappasswd failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An LDIF value: `name: value`, or `name:: base64` when it is not plain ASCII.
fn attr(name: &str, value: &str) -> String {
    if value.is_ascii() {
        format!("{name}: {value}\n")
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        format!("{name}:: {encoded}\n")
    }
}

fn people_ldif() -> String {
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n\
         dc: example\n\ndn: {PEOPLE_BASE}\nobjectClass: organizationalUnit\nou: people\n"
    );
    for p in PEOPLE {
        ldif.push_str(&format!("\ndn: uid={},{PEOPLE_BASE}\n", p.uid));
        ldif.push_str("objectClass: inetOrgPerson\n");
        ldif.push_str(&attr("uid", p.uid));
        ldif.push_str(&attr("cn", p.cn));
        let surname = p.cn.rsplit(' ').next().unwrap_or(p.cn);
        ldif.push_str(&attr("sn", surname));
        ldif.push_str(&attr("mail", p.mail));
        ldif.push_str(&attr("userPassword", &slappasswd(p.password)));
    }
    ldif
}

/// Enables `user_ldap` in `nc` and points a new configuration at `slapd`: people are found
/// under [`PEOPLE_BASE`], log in by uid or mail, and show `cn` and `mail`. With
/// [`AccountIds::Uid`], the expert username attribute is set before anyone is seen. Checks
/// the configuration with `occ ldap:test-config`.
pub fn connect_nextcloud(nc: &Nextcloud, slapd: &Slapd, ids: AccountIds) {
    let started = Instant::now();
    nc.occ(&["app:enable", "user_ldap"]);
    let created = nc.occ(&["ldap:create-empty-config"]);
    let config = created
        .split_whitespace()
        .last()
        .unwrap_or_else(|| panic!("no configID in {created}"))
        .to_owned();
    let port = slapd.port().to_string();
    let mut settings = vec![
        ("ldapHost", "ldap://127.0.0.1"),
        ("ldapPort", port.as_str()),
        ("ldapAgentName", ROOT_DN),
        ("ldapAgentPassword", ROOT_PW),
        ("ldapBase", SUFFIX),
        ("ldapBaseUsers", PEOPLE_BASE),
        ("ldapUserFilter", "(objectClass=inetOrgPerson)"),
        (
            "ldapLoginFilter",
            "(&(objectClass=inetOrgPerson)(|(uid=%uid)(mail=%uid)))",
        ),
        ("ldapUserDisplayName", "cn"),
        ("ldapEmailAttribute", "mail"),
    ];
    if ids == AccountIds::Uid {
        settings.push(("ldapExpertUsernameAttr", "uid"));
    }
    settings.push(("ldapConfigurationActive", "1"));
    for (key, value) in settings {
        nc.occ(&["ldap:set-config", &config, key, value]);
    }
    let tested = nc.occ(&["ldap:test-config", &config]);
    assert!(
        tested.contains("The configuration is valid"),
        "ldap:test-config {config}: {tested}"
    );
    eprintln!("ldap: user_ldap configured in {:.1?}", started.elapsed());
}
