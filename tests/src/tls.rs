//! A throw-away PKI made at test time with the `openssl` command (Debian's `openssl`
//! package, present wherever the test peers are): a test CA, server certificates it signs
//! (valid, expired, for the wrong host name), a self-signed one and one from a second CA that
//! nothing trusts. Keys are EC P-256; every server certificate names `IP:127.0.0.1`, where
//! the backend double listens, unless it is the wrong-name one.
//!
//! The `openssl` command rather than a certificate crate: it adds no dependency, and
//! `openssl ca` sets exact validity dates, which an expired certificate needs.

// Test support: a failed openssl run is a test failure, and panicking is the clearest report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::double::TlsFiles;

/// A certificate authority: its certificate and key, and the `openssl ca` state.
#[derive(Debug)]
pub struct Ca {
    dir: PathBuf,
    /// The CA certificate (PEM): what `ca-file=` points at.
    pub cert: PathBuf,
    key: PathBuf,
    config: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

impl Ca {
    /// A new CA named `name` in `dir/name/`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let mut args = vec!["req", "-x509", "-nodes"];
        args.extend(EC);
        let subject = format!("/CN=xcauth test CA {name}");
        args.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&dir, &args);
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        let config = dir.join("ca.cnf");
        std::fs::write(
            &config,
            format!(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\n\
                 serial = {d}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n\
                 [p]\ncommonName = supplied\n",
                d = dir.display()
            ),
        )
        .unwrap();
        Ca {
            dir,
            cert,
            key,
            config,
        }
    }

    /// A server certificate for `san` (`IP:127.0.0.1`, `DNS:wrong.example`) valid from
    /// `start` to `end` (`YYYYMMDDHHMMSSZ`; `None`: from now for 30 days).
    pub fn issue(&self, name: &str, san: &str, validity: Option<(&str, &str)>) -> TlsFiles {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend(EC);
        args.extend([
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=xcauth test server",
        ]);
        openssl(&self.dir, &args);
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
            ),
        )
        .unwrap();
        let (config, ca_cert, ca_key) = (
            self.config.to_str().unwrap(),
            self.cert.to_str().unwrap(),
            self.key.to_str().unwrap(),
        );
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", config, "-cert", ca_cert, "-keyfile", ca_key,
            "-in", &csr, "-out", &pem, "-extfile", &ext,
        ];
        match validity {
            Some((start, end)) => args.extend(["-startdate", start, "-enddate", end]),
            None => args.extend(["-days", "30"]),
        }
        openssl(&self.dir, &args);
        TlsFiles {
            cert_chain: self.dir.join(pem),
            key: self.dir.join(key),
        }
    }
}

/// A self-signed server certificate for `IP:127.0.0.1`.
pub fn self_signed(dir: &Path, name: &str) -> TlsFiles {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec!["req", "-x509", "-nodes"];
    args.extend(EC);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.pem",
        "-days",
        "30",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    ]);
    openssl(&dir, &args);
    TlsFiles {
        cert_chain: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// Everything the TLS tests need, made once per test in `dir`.
#[derive(Debug)]
pub struct TestPki {
    /// The CA the client is told to trust (`ca-file=`).
    pub ca: Ca,
    /// Signed by `ca`, for 127.0.0.1, valid now.
    pub good: TlsFiles,
    /// Signed by `ca`, for 127.0.0.1, expired in 2020.
    pub expired: TlsFiles,
    /// Signed by `ca`, for `wrong.example` only.
    pub wrong_name: TlsFiles,
    /// Self-signed, for 127.0.0.1.
    pub self_signed: TlsFiles,
    /// Signed by a second CA that nothing trusts, for 127.0.0.1.
    pub untrusted: TlsFiles,
}

impl TestPki {
    /// Makes the PKI under `dir`.
    pub fn new(dir: &Path) -> TestPki {
        let ca = Ca::new(dir, "trusted");
        let good = ca.issue("good", "IP:127.0.0.1", None);
        let expired = ca.issue(
            "expired",
            "IP:127.0.0.1",
            Some(("20200101000000Z", "20200201000000Z")),
        );
        let wrong_name = ca.issue("wrongname", "DNS:wrong.example", None);
        let self_signed = self_signed(dir, "selfsigned");
        let other = Ca::new(dir, "untrusted");
        let untrusted = other.issue("untrusted", "IP:127.0.0.1", None);
        TestPki {
            ca,
            good,
            expired,
            wrong_name,
            self_signed,
            untrusted,
        }
    }

    /// A backend double with API secret `secret` serving HTTPS with the good certificate.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn https_double(&self, secret: &str) -> crate::double::BackendDouble {
        let d = crate::double::BackendDouble::start_with(
            secret,
            crate::double::Options {
                tls: Some(self.good.clone()),
                ..crate::double::Options::default()
            },
        )
        .unwrap();
        assert!(d.url().starts_with("https://127.0.0.1:"), "{}", d.url());
        d
    }

    /// The refused certificates with the words their log line must contain.
    pub fn refused(&self) -> Vec<(&'static str, &TlsFiles, &'static str)> {
        vec![
            (
                "self-signed",
                &self.self_signed,
                "not signed by a trusted CA",
            ),
            (
                "untrusted CA",
                &self.untrusted,
                "not signed by a trusted CA",
            ),
            (
                "wrong host name",
                &self.wrong_name,
                "not valid for the host name",
            ),
            ("expired", &self.expired, "certificate has expired"),
        ]
    }
}
