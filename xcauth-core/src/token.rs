//! The JSXC time-limited token (docs/jsxc-api.md §7).
//!
//! A token is 31 characters of base64 (with `=` removed and `O I l` mapped to
//! `- $ %`) over 23 bytes: `version(0) || mac[16] || keyid[2] || expiry_be[4]`,
//! where `mac = HMAC-SHA256(secret, version || keyid || expiry || "user@domain")`
//! truncated to 16 bytes.
//!
//! Divergences from the original, on purpose: the MAC covers the full UTF-8 JID
//! (the original truncated non-ASCII JIDs), and "now" is passed per call.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::{Password, Secret};

type HmacSha256 = Hmac<Sha256>;

const RAW_LEN: usize = 23;
const MAC_LEN: usize = 16;

/// Why a password was not accepted as a token. Only [`TokenCheck::Valid`]
/// authenticates; every other outcome falls through to the cache and backend,
/// because the "password" is usually just a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// A genuine, unexpired token for this JID.
    Valid,
    /// Not shaped like a token at all (normal for ordinary passwords).
    NotAToken,
    /// Token shape but an unsupported version byte.
    UnknownVersion,
    /// A well-formed token whose expiry lies in the past.
    Expired {
        /// The token's expiry, Unix seconds.
        expiry: u32,
    },
    /// A well-formed token whose MAC does not match (wrong user, secret or tampering).
    BadSignature,
}

impl TokenCheck {
    /// A short, log-safe description of the outcome.
    pub fn describe(&self) -> &'static str {
        match self {
            TokenCheck::Valid => "valid token",
            TokenCheck::NotAToken => "not a token (normal for passwords)",
            TokenCheck::UnknownVersion => "not a token (unknown version byte)",
            TokenCheck::Expired { .. } => "token expired",
            TokenCheck::BadSignature => "token has an invalid signature",
        }
    }
}

/// Verifies `password` as a token for `user@domain` at time `now` (Unix seconds).
///
/// `domain` is the XMPP domain (not the backend's authdomain) and `secret` the
/// per-domain secret. `expiry == now` is still valid; there is no not-before.
pub fn verify(
    password: &Password,
    user: &str,
    domain: &str,
    secret: &Secret,
    now: i64,
) -> TokenCheck {
    let Some(raw) = decode(password.expose()) else {
        return TokenCheck::NotAToken;
    };
    if raw[0] != 0 {
        return TokenCheck::UnknownVersion;
    }
    let header = &raw[1 + MAC_LEN..];
    let mac = &raw[1..1 + MAC_LEN];
    let expected = compute_mac(secret, header, user, domain);
    if !bool::from(expected[..MAC_LEN].ct_eq(mac)) {
        return TokenCheck::BadSignature;
    }
    let expiry = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    if i64::from(expiry) < now {
        return TokenCheck::Expired { expiry };
    }
    TokenCheck::Valid
}

/// Generates a token for `user@domain` that expires at `expiry` (Unix seconds).
/// Used by the demo backend, benchmarks and admins debugging tokens.
pub fn generate(user: &str, domain: &str, secret: &Secret, expiry: u32) -> String {
    let digest = Sha256::digest(secret.expose().as_bytes());
    let mut header = [0u8; 6];
    header[..2].copy_from_slice(&digest[..2]);
    header[2..].copy_from_slice(&expiry.to_be_bytes());
    let mac = compute_mac(secret, &header, user, domain);
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.push(0u8);
    raw.extend_from_slice(&mac[..MAC_LEN]);
    raw.extend_from_slice(&header);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    b64.trim_end_matches('=')
        .chars()
        .map(|c| match c {
            'O' => '-',
            'I' => '$',
            'l' => '%',
            other => other,
        })
        .collect()
}

fn compute_mac(secret: &Secret, header: &[u8], user: &str, domain: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(&[0u8]);
    mac.update(header);
    mac.update(user.as_bytes());
    mac.update(b"@");
    mac.update(domain.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // HMAC's KeyInit::new_from_slice only fails for fixed-size-key MACs.
    unreachable!("HMAC accepts keys of any length")
}

/// Decodes a candidate token the way the original's lenient base64 did:
/// map `- $ %` back, drop characters outside the alphabet, stop after the
/// first complete padding group. Returns the 23 raw bytes or `None`.
fn decode(text: &str) -> Option<[u8; RAW_LEN]> {
    if !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; RAW_LEN];
    let mut n = 0usize;
    let mut acc: u32 = 0;
    let mut quad_pos = 0u8;
    let mut pads = 0u8;
    let mut done = false;
    // The original appended "=======" so that unpadded tokens decode.
    for b in text.bytes().chain(std::iter::repeat_n(b'=', 7)) {
        let b = match b {
            b'-' => b'O',
            b'$' => b'I',
            b'%' => b'l',
            other => other,
        };
        if b == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    done = true;
                    break;
                }
            }
            continue;
        }
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue, // discarded like the original's non-strict decoder
        };
        // Data after a lone '=' inside a quad resets the pad count.
        pads = 0;
        acc = (acc << 6) | u32::from(v);
        quad_pos += 1;
        if quad_pos == 4 {
            for shift in [16u32, 8, 0] {
                if n == RAW_LEN {
                    return None; // too long: not a token
                }
                out[n] = ((acc >> shift) & 0xff) as u8;
                n += 1;
            }
            acc = 0;
            quad_pos = 0;
        }
    }
    if !done {
        if quad_pos != 0 {
            return None;
        }
    } else {
        // quad_pos is 2 or 3 here: emit the 1 or 2 remaining bytes.
        let extra = usize::from(quad_pos) - 1;
        let acc = acc << (6 * (4 - u32::from(quad_pos)));
        for shift in [16u32, 8].into_iter().take(extra) {
            if n == RAW_LEN {
                return None;
            }
            out[n] = ((acc >> shift) & 0xff) as u8;
            n += 1;
        }
    }
    (n == RAW_LEN).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vector {
        user: &'static str,
        domain: &'static str,
        secret: &'static str,
        expiry: u32,
        token: &'static str,
        raw_hex: &'static str,
    }

    const VECTORS: [Vector; 5] = [
        Vector {
            user: "tuser",
            domain: "tdomain",
            secret: "01234",
            expiry: 4600,
            token: "AMydsCzkh8-8vjcb9U2gqV/FZQAAEfg",
            raw_hex: "00cc9db02ce487c3bcbe371bf54da0a95fc565000011f8",
        },
        Vector {
            user: "user3",
            domain: "domain3",
            secret: "01234",
            expiry: 3601,
            token: "ABbL+6M8K7HGF/vnfaZZi5XFZQAADhE",
            raw_hex: "0016cbfba33c2bb1c617fbe77da6598b95c56500000e11",
        },
        Vector {
            user: "alice",
            domain: "example.org",
            secret: "s3cr3t",
            expiry: 1_700_003_600,
            token: "AMtRUM56d$QcL9ifzpQNpw%-c2VT/xA",
            raw_hex: "00cb5150ce7a74841c2fd89fce940da7094e736553ff10",
        },
        Vector {
            user: "bob",
            domain: "example.com",
            secret: "0123456789ABCDEF",
            expiry: 1_600_086_400,
            token: "AMSrd4ixa8Nm04VYG7eVMbMhJV9fYYA",
            raw_hex: "00c4ab7788b16bc366d385581bb79531b321255f5f6180",
        },
        Vector {
            user: "jörg",
            domain: "exämple.de",
            secret: "geheim",
            expiry: 2_000_000_060,
            token: "A-JSeW14220T%GZP$SbgZwut23c1%Dw",
            raw_hex: "00e252796d78db6d1394664f2126e0670baddb7735943c",
        },
    ];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn check(v: &Vector, pw: &str, now: i64) -> TokenCheck {
        verify(
            &Password::new(pw),
            v.user,
            v.domain,
            &Secret::new(v.secret),
            now,
        )
    }

    #[test]
    fn vectors_generate_and_decode() {
        for v in &VECTORS {
            let t = generate(v.user, v.domain, &Secret::new(v.secret), v.expiry);
            assert_eq!(t, v.token, "generate {}", v.user);
            assert_eq!(t.len(), 31);
            assert_eq!(hex(&decode(v.token).unwrap()), v.raw_hex);
        }
    }

    #[test]
    fn vectors_valid_until_expiry_inclusive() {
        for v in &VECTORS {
            let e = i64::from(v.expiry);
            assert_eq!(
                check(v, v.token, e),
                TokenCheck::Valid,
                "{} at expiry",
                v.user
            );
            assert_eq!(
                check(v, v.token, e + 1),
                TokenCheck::Expired { expiry: v.expiry },
                "{} one second late",
                v.user
            );
            assert_eq!(check(v, v.token, 0), TokenCheck::Valid, "no not-before");
        }
    }

    #[test]
    fn original_verification_table() {
        let v = &VECTORS[0];
        let t = v.token;
        assert_eq!(check(v, &format!("{t}="), 4000), TokenCheck::Valid);
        assert_eq!(check(v, &format!("{t}======="), 4000), TokenCheck::Valid);
        assert_eq!(check(v, &t.replace('-', "O"), 4000), TokenCheck::Valid);
        let spaced = format!(" {} {}\n", &t[..10], &t[10..]);
        assert_eq!(check(v, &spaced, 4000), TokenCheck::Valid);
        assert_eq!(check(v, &t[..30], 4000), TokenCheck::NotAToken);
        assert_eq!(check(v, &format!("{t}A"), 4000), TokenCheck::NotAToken);
        assert_eq!(check(v, &format!("{t}AAAA"), 4000), TokenCheck::NotAToken);
        let other_user = verify(
            &Password::new(t),
            "Tuser",
            "tdomain",
            &Secret::new("01234"),
            4000,
        );
        assert_eq!(other_user, TokenCheck::BadSignature);
        assert_eq!(
            check(v, "BMydsCzkh8-8vjcb9U2gqV/FZQAAEfg", 4000),
            TokenCheck::UnknownVersion
        );
        assert_eq!(
            check(v, "AMydsCzkh8-8vjcb9U2gqV/AAAAAEfg", 4000),
            TokenCheck::BadSignature
        );
        assert_eq!(check(v, &t.replace('/', "_"), 4000), TokenCheck::NotAToken);
        assert_eq!(check(v, "pässwörd", 4000), TokenCheck::NotAToken);
        assert_eq!(check(v, "", 4000), TokenCheck::NotAToken);
        assert_eq!(check(v, "secret", 4000), TokenCheck::NotAToken);
    }

    #[test]
    fn wrong_secret_is_bad_signature() {
        let v = &VECTORS[2];
        let r = verify(
            &Password::new(v.token),
            v.user,
            v.domain,
            &Secret::new("other"),
            0,
        );
        assert_eq!(r, TokenCheck::BadSignature);
    }

    #[test]
    fn non_ascii_jid_verifies() {
        let v = &VECTORS[4];
        assert_eq!(check(v, v.token, 2_000_000_000), TokenCheck::Valid);
    }
}
