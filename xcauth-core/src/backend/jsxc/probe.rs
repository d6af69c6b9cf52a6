//! One signed request whose whole answer (status, `Date`, `Content-Type`, body) is returned
//! for a diagnosis (`xcauthd check`), through the same client set-up as logins: timeouts,
//! `ca-file=`, no redirects, TLS failures named.

use std::io::Read;

use super::{classify, form, signature, JsxcClient};
use crate::backend::Target;
use crate::vocab::{ErrorChain, TlsFailure, Transport, Unavailable};

/// Largest body kept from a probe's answer.
const MAX_PROBE_BODY: u64 = 64 * 1024;

/// The backend's answer to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReply {
    /// The HTTP status.
    pub status: u16,
    /// The `Date` header, if any.
    pub date: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Location` header of a redirect, if any.
    pub location: Option<String>,
    /// The first 64 KiB of the body.
    pub body: Vec<u8>,
}

impl JsxcClient {
    /// Sends a signed `isuser` for `user` to `target` on a new connection and returns the
    /// answer as it came, or why none came (transport, TLS with its cause, timeout).
    pub fn probe(&self, target: &Target, user: &str) -> Result<ProbeReply, Unavailable> {
        let body = form(&[
            ("operation", "isuser"),
            ("username", user),
            ("domain", &target.authdomain),
        ]);
        let sig = signature(&target.secret, body.as_bytes());
        let http = self
            .builder()
            .map_err(|e| Unavailable::Tls(TlsFailure::Setup(e)))?
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Unavailable::Tls(TlsFailure::Setup(e.to_string())))?;
        let response = http
            .post(target.url.url().clone())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "*/*")
            .header("X-JSXC-SIGNATURE", sig)
            .body(body.as_bytes().to_vec())
            .send()
            .map_err(|e| classify(&e))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (date, content_type, location) =
            (header("date"), header("content-type"), header("location"));
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .take(MAX_PROBE_BODY)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Unavailable::Transport(Transport::ReadingBody(ErrorChain::new(e.to_string())))
            })?;
        Ok(ProbeReply {
            status,
            date,
            content_type,
            location,
            body: bytes,
        })
    }
}
