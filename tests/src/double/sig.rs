//! `hash_algos()` / `hash_hmac()` of PHP, as far as the double needs them.

use hmac::{KeyInit, Mac, SimpleHmac};

/// Which PHP generation the double imitates. It only matters for the checksum algorithms
/// (`crc32`, `fnv1a64`, …): PHP 8 throws inside `hash_hmac()` (Nextcloud's generic HTML 500),
/// PHP 7 returns `false` (`Signature does not match.`) and does not know `crc32c`, `murmur*`
/// and `xxh*` at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhpVersion {
    /// PHP 7.2 – 7.4.
    Php7,
    /// PHP 8.1 and later (the default).
    #[default]
    Php8,
}

/// What PHP does with an algorithm name in the signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// Not in `hash_algos()`: `Hash algorithm '…' is not supported.`
    Unknown,
    /// A cryptographic hash that `hash_hmac()` accepts.
    Crypto,
    /// A checksum that `hash_algos()` lists but `hash_hmac()` refuses.
    Checksum,
}

const CRYPTO: &[&str] = &[
    "md2",
    "md4",
    "md5",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512/224",
    "sha512/256",
    "sha512",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "ripemd128",
    "ripemd160",
    "ripemd256",
    "ripemd320",
    "whirlpool",
    "tiger128,3",
    "tiger160,3",
    "tiger192,3",
    "tiger128,4",
    "tiger160,4",
    "tiger192,4",
    "snefru",
    "snefru256",
    "gost",
    "gost-crypto",
    "haval128,3",
    "haval160,3",
    "haval192,3",
    "haval224,3",
    "haval256,3",
    "haval128,4",
    "haval160,4",
    "haval192,4",
    "haval224,4",
    "haval256,4",
    "haval128,5",
    "haval160,5",
    "haval192,5",
    "haval224,5",
    "haval256,5",
];

const CHECKSUM_PHP7: &[&str] = &[
    "adler32", "crc32", "crc32b", "fnv132", "fnv1a32", "fnv164", "fnv1a64", "joaat",
];

const CHECKSUM_PHP8_ONLY: &[&str] = &[
    "crc32c", "murmur3a", "murmur3c", "murmur3f", "xxh32", "xxh64", "xxh3", "xxh128",
];

/// Classifies `name` (case-sensitive, like `in_array(…, hash_algos(), true)`).
pub fn classify(name: &[u8], php: PhpVersion) -> Algo {
    let Ok(name) = std::str::from_utf8(name) else {
        return Algo::Unknown;
    };
    if CRYPTO.contains(&name) {
        Algo::Crypto
    } else if CHECKSUM_PHP7.contains(&name)
        || (php == PhpVersion::Php8 && CHECKSUM_PHP8_ONLY.contains(&name))
    {
        Algo::Checksum
    } else {
        Algo::Unknown
    }
}

macro_rules! hmac_with {
    ($digest:ty, $key:expr, $msg:expr) => {{
        let mut mac = <SimpleHmac<$digest> as KeyInit>::new_from_slice($key).ok()?;
        mac.update($msg);
        Some(hex(&mac.finalize().into_bytes()))
    }};
}

/// `hash_hmac(algo, msg, key)` as lower-case hex, for the algorithms implemented here (md5, sha1,
/// the sha2 and sha3 families, ripemd128/160/256/320, whirlpool). `None` for anything else —
/// the double then answers `Signature does not match.` for the other PHP algorithms (md2, md4,
/// tiger, snefru, gost, haval), which no client uses.
pub fn hmac_hex(algo: &str, key: &[u8], msg: &[u8]) -> Option<String> {
    match algo {
        "md5" => hmac_with!(md5::Md5, key, msg),
        "sha1" => hmac_with!(sha1::Sha1, key, msg),
        "sha224" => hmac_with!(sha2::Sha224, key, msg),
        "sha256" => hmac_with!(sha2::Sha256, key, msg),
        "sha384" => hmac_with!(sha2::Sha384, key, msg),
        "sha512" => hmac_with!(sha2::Sha512, key, msg),
        "sha512/224" => hmac_with!(sha2::Sha512_224, key, msg),
        "sha512/256" => hmac_with!(sha2::Sha512_256, key, msg),
        "sha3-224" => hmac_with!(sha3::Sha3_224, key, msg),
        "sha3-256" => hmac_with!(sha3::Sha3_256, key, msg),
        "sha3-384" => hmac_with!(sha3::Sha3_384, key, msg),
        "sha3-512" => hmac_with!(sha3::Sha3_512, key, msg),
        "ripemd128" => hmac_with!(ripemd::Ripemd128, key, msg),
        "ripemd160" => hmac_with!(ripemd::Ripemd160, key, msg),
        "ripemd256" => hmac_with!(ripemd::Ripemd256, key, msg),
        "ripemd320" => hmac_with!(ripemd::Ripemd320, key, msg),
        "whirlpool" => hmac_with!(whirlpool::Whirlpool, key, msg),
        _ => None,
    }
}

/// The header value xcauth sends: `sha1=` + lower-case hex HMAC-SHA1(secret, body).
pub fn sign(secret: &str, body: &[u8]) -> String {
    sign_with("sha1", secret, body).unwrap_or_default()
}

/// `ALGO=` + lower-case hex HMAC-ALGO(secret, body), for the algorithms of [`hmac_hex`].
pub fn sign_with(algo: &str, secret: &str, body: &[u8]) -> Option<String> {
    hmac_hex(algo, secret.as_bytes(), body).map(|h| format!("{algo}={h}"))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_and_4231_vectors() {
        // RFC 2202 test case 2.
        assert_eq!(
            hmac_hex("md5", b"Jefe", b"what do ya want for nothing?").unwrap(),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hmac_hex("sha1", b"Jefe", b"what do ya want for nothing?").unwrap(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex("sha256", b"Jefe", b"what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 2286 test case 2.
        assert_eq!(
            hmac_hex("ripemd160", b"Jefe", b"what do ya want for nothing?").unwrap(),
            "dda6c0213a485a9e24f4742064a7f033b43c4069"
        );
    }

    #[test]
    fn classification() {
        assert_eq!(classify(b"sha1", PhpVersion::Php8), Algo::Crypto);
        assert_eq!(classify(b"SHA1", PhpVersion::Php8), Algo::Unknown);
        assert_eq!(classify(b"crc32", PhpVersion::Php7), Algo::Checksum);
        assert_eq!(classify(b"xxh3", PhpVersion::Php8), Algo::Checksum);
        assert_eq!(classify(b"xxh3", PhpVersion::Php7), Algo::Unknown);
        assert_eq!(classify(b"foo", PhpVersion::Php8), Algo::Unknown);
    }
}
