//! The time-limited token: `token::verify` on an arbitrary password (what every login tries
//! first), and `generate` → `verify` for arbitrary users, domains, secrets and expiries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcauth_core::token::{generate, verify, TokenCheck};
use xcauth_core::{Password, Secret};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let secret = Secret::new("fuzz-secret");
    let text = String::from_utf8_lossy(data);
    let check = verify(
        &Password::new(text.as_ref()),
        "alice",
        "example.org",
        &secret,
        NOW,
    );
    // Nothing the fuzzer makes up is a valid token for alice: the MAC is 128 bits and the
    // seed tokens are signed with another secret.
    assert_ne!(check, TokenCheck::Valid, "forged token accepted");

    // user NUL domain NUL secret NUL expiry(4 bytes): a generated token verifies for exactly
    // that user until it expires.
    let mut parts = data.splitn(4, |&b| b == 0);
    let (Some(user), Some(domain), Some(key), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Ok(user), Ok(domain), Ok(key)) = (
        std::str::from_utf8(user),
        std::str::from_utf8(domain),
        std::str::from_utf8(key),
    ) else {
        return;
    };
    let expiry = rest
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let secret = Secret::new(key);
    let token = Password::new(generate(user, domain, &secret, expiry));
    let now = i64::from(expiry) - 1;
    assert_eq!(
        verify(&token, user, domain, &secret, now),
        TokenCheck::Valid
    );
    assert_eq!(
        verify(&token, user, domain, &secret, i64::from(expiry) + 1),
        TokenCheck::Expired { expiry }
    );
    let other = format!("{user}x");
    assert_eq!(
        verify(&token, &other, domain, &secret, now),
        TokenCheck::BadSignature,
        "a token for {user:?} also fits {other:?}"
    );
});
