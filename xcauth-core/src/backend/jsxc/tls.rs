//! The backend client's TLS settings, made once per process.
//!
//! Loading the system trust store (reading and parsing every certificate in the system's CA
//! bundle) was most of the cost of setting up a client, and a PAM module builds a client per
//! call: every in-process password check paid it. Here the trust anchors and the base rustls
//! configuration are made on first use and kept in a static. They are plain data: no thread,
//! no open file, no lock held once made, so a host that forks after a call (saslauthd's
//! pre-forked children) hands each child a usable copy. What a client changes at run time is
//! not shared: each client gets its own TLS session cache, as reqwest would give it.
//!
//! Certificates added to the system store later are seen after the process restarts (xcauthd,
//! or the host of the PAM module), as with any TLS client that loads its roots at start; the
//! `ca-file=` certificates are read each time a client is made.

use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The system's trust anchors and a configuration trusting exactly them.
struct Base {
    roots: Arc<RootCertStore>,
    config: ClientConfig,
}

static BASE: OnceLock<Result<Base, String>> = OnceLock::new();

fn base() -> Result<&'static Base, String> {
    BASE.get_or_init(|| {
        let roots = Arc::new(system_roots()?);
        let config = config_with(Arc::clone(&roots))?;
        Ok(Base { roots, config })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The system store, read like reqwest reads it: unparsable entries (old stores carry some)
/// are skipped; a store with entries but none usable is an error. An empty or missing store is
/// not (`ca-file=` may name the only CA the backend needs).
fn system_roots() -> Result<RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (valid, invalid) = roots.add_parsable_certificates(loaded.certs);
    if valid == 0 && invalid > 0 {
        let why = loaded
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "no usable certificate in the system trust store ({invalid} unparsable){}{why}",
            if why.is_empty() { "" } else { ": " }
        ));
    }
    Ok(roots)
}

/// reqwest's own rustls set-up (its crypto provider choice, every protocol version, HTTP/1.1
/// by ALPN), trusting `roots`.
fn config_with(roots: Arc<RootCertStore>) -> Result<ClientConfig, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The static copy shares nothing mutable; each client gets a session cache of its own.
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The certificates of a PEM bundle (`ca-file=`).
pub(super) fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))
}

/// A configuration for one client: the system store plus `extra`, with its own session
/// cache. Without `extra` this is a cheap copy of the process's base configuration.
pub(super) fn client_config(extra: &[CertificateDer<'static>]) -> Result<ClientConfig, String> {
    let base = base()?;
    let mut config = if extra.is_empty() {
        base.config.clone()
    } else {
        let mut roots = RootCertStore::clone(&base.roots);
        for cert in extra {
            roots
                .add(cert.clone())
                .map_err(|e| format!("ca-file: unusable certificate: {e}"))?;
        }
        config_with(Arc::new(roots))?
    };
    config.resumption = Resumption::default();
    Ok(config)
}
