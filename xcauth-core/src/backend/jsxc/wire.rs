//! The JSXC API on the wire, without I/O: signed form bodies out, JSON answers mapped to
//! the tri-state of [`crate::vocab`].

use hmac::{Hmac, KeyInit, Mac};
use log::warn;
use serde_json::Value;
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::vocab::{
    AuthReply, Malformed, RosterEntry, RosterReply, SharedRoster, Unavailable, UserExists,
};

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The body of a `200` answer as JSON, or why there is none.
fn json_body(status: u16, body: &[u8]) -> Result<Value, Unavailable> {
    if status != 200 {
        return Err(Unavailable::Status(status));
    }
    serde_json::from_slice(body).map_err(|_| Unavailable::NotJson)
}

/// The answer to an `auth` request, from the HTTP status and the whole response body: the
/// parser the client uses (and the fuzz target `backend_reply` drives).
pub fn parse_auth_reply(status: u16, body: &[u8]) -> AuthReply {
    match json_body(status, body) {
        Ok(json) => map_auth(&json),
        // Nextcloud answers 401 (older versions 403) to the right password
        // of a disabled account. xcauth 2 took that as "unreachable" and
        // let the cache vouch for a week; a disabled account is a refusal.
        Err(Unavailable::Status(status @ (401 | 403))) => {
            log::info!("backend refused the account with HTTP {status} (disabled user?)");
            AuthReply::Rejected
        }
        Err(why) => AuthReply::Unavailable(why),
    }
}

/// The answer to an `isuser` request, from the HTTP status and the whole response body.
pub fn parse_isuser_reply(status: u16, body: &[u8]) -> UserExists {
    match json_body(status, body) {
        Ok(json) => map_isuser(&json),
        Err(why) => UserExists::Unknown(why),
    }
}

/// The answer to a `sharedroster` request, from the HTTP status and the whole response body.
pub fn parse_roster_reply(status: u16, body: &[u8]) -> RosterReply {
    match json_body(status, body) {
        Ok(json) => map_roster(&json, String::from_utf8_lossy(body).into_owned()),
        Err(why) => RosterReply::Unavailable(why),
    }
}

/// docs/jsxc-api.md §5.2.
pub(super) fn map_auth(json: &Value) -> AuthReply {
    let Value::Object(obj) = json else {
        return AuthReply::Unavailable(Unavailable::Malformed(Malformed::NotObject));
    };
    match obj.get("result") {
        None => AuthReply::Unavailable(Unavailable::Malformed(Malformed::NoResult)),
        Some(r) if !truthy(r) => {
            AuthReply::Unavailable(Unavailable::Malformed(Malformed::EmptyResult))
        }
        Some(Value::String(s)) if s == "success" => AuthReply::Accepted {
            uid: obj
                .get("data")
                .and_then(|d| d.get("uid"))
                .and_then(Value::as_str)
                .filter(|uid| !uid.is_empty() && !uid.contains('\0'))
                .map(str::to_owned),
        },
        Some(Value::String(s)) if s == "error" => {
            AuthReply::Unavailable(Unavailable::Malformed(Malformed::ReportedError))
        }
        Some(_) => AuthReply::Rejected,
    }
}

/// docs/jsxc-api.md §5.3, with the strict values of §5.5.
pub(super) fn map_isuser(json: &Value) -> UserExists {
    let malformed = |why: Malformed| {
        log::error!("malformed isuser response: {why}");
        UserExists::Unknown(Unavailable::Malformed(why))
    };
    let Value::Object(obj) = json else {
        return malformed(Malformed::NotObject);
    };
    if obj.get("result").and_then(Value::as_str) != Some("success") {
        return UserExists::Unknown(Unavailable::Malformed(Malformed::NotSuccess));
    }
    let Some(Value::Object(data)) = obj.get("data") else {
        return malformed(Malformed::NoData);
    };
    match data.get("isUser") {
        Some(Value::Bool(true)) => UserExists::Yes,
        Some(Value::Bool(false) | Value::Null) => UserExists::No,
        Some(Value::Number(n)) if n.as_i64() == Some(1) => UserExists::Yes,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => UserExists::No,
        Some(Value::String(s)) if s == "1" => UserExists::Yes,
        Some(Value::String(s)) if s == "0" || s.is_empty() => UserExists::No,
        Some(_) => malformed(Malformed::IsUserValue),
        None => malformed(Malformed::NoIsUser),
    }
}

/// docs/jsxc-api.md §5.4.
pub(super) fn map_roster(json: &Value, body: String) -> RosterReply {
    let roster = json
        .as_object()
        .and_then(|o| o.get("data"))
        .and_then(Value::as_object)
        .and_then(|d| d.get("sharedRoster"));
    let entries = match roster {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| entry(k.clone(), v)).collect(),
        // PHP's empty array, or a list when every UID is 0..n-1.
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| entry(i.to_string(), v))
            .collect(),
        _ => {
            warn!("weird sharedroster response (no data.sharedRoster)");
            return RosterReply::Unavailable(Unavailable::Malformed(Malformed::NoSharedRoster));
        }
    };
    RosterReply::Roster(SharedRoster { entries, body })
}

fn entry(uid: String, v: &Value) -> RosterEntry {
    RosterEntry {
        uid,
        name: v.get("name").and_then(Value::as_str).map(str::to_owned),
        groups: v
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `X-JSXC-SIGNATURE` value: `sha1=` + lower-case hex HMAC-SHA1(secret, body).
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(5 + 40);
    out.push_str("sha1=");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// A form body in field order, encoded like Python's `urlencode` (`quote_plus`).
/// It may hold a password: the buffer is allocated at its final size (so no
/// reallocation leaves an unwiped copy behind) and wiped on drop.
pub fn form(fields: &[(&str, &str)]) -> Zeroizing<String> {
    let encoded = |s: &str| -> usize {
        s.bytes()
            .map(|b| if unreserved(b) || b == b' ' { 1 } else { 3 })
            .sum()
    };
    let len = fields
        .iter()
        .map(|(k, v)| encoded(k) + 1 + encoded(v))
        .sum::<usize>()
        + fields.len().saturating_sub(1);
    let mut out = Zeroizing::new(String::with_capacity(len));
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(k, &mut out);
        out.push('=');
        quote_plus(v, &mut out);
    }
    debug_assert_eq!(out.len(), len);
    out
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~')
}

fn quote_plus(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        match b {
            _ if unreserved(b) => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_vectors() {
        let vectors = [
            ("testsecret", "operation=isuser&username=good&domain=example.org", "0154f7921267dab6283ffb5a700544e6a8537e55"),
            ("0123456789ABCDEF", "operation=isuser&username=good&domain=example.org", "e93630b20b500c826dc41326edecc2cb3d6d2f52"),
            ("testsecret", "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A", "f00feaaf791326f413d4ded2496149a01ad43ddf"),
            ("0123456789ABCDEF", "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A", "1dfa099535d287082934b34239bca8a3e9d827b8"),
            ("testsecret", "operation=sharedroster&username=j%C3%B6rg&domain=ex%C3%A4mple.de", "7363ea003f7cefdeff8c73d81189cb255fafedc3"),
            ("testsecret", "operation=auth&username=good&domain=e&password=p%C3%A4ssw%C3%B6rd", "b4d95863898965f314bfc85692332bc8340154c3"),
            ("testsecret", "operation=auth&username=good&domain=example.org&password=pw", "80a4ff986d4e07fca3d3f6b91305c197553f7628"),
        ];
        for (secret, body, hex) in vectors {
            assert_eq!(
                signature(&Secret::new(secret), body.as_bytes()),
                format!("sha1={hex}")
            );
        }
    }

    #[test]
    fn form_encoding_matches_the_original() {
        assert_eq!(
            *form(&[("operation", "auth"), ("username", "jane.doe"), ("domain", "example.com"), ("password", "p4ss w0rd:+&=/~_.-*")]),
            "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A"
        );
        assert_eq!(
            *form(&[
                ("operation", "sharedroster"),
                ("username", "jörg"),
                ("domain", "exämple.de")
            ]),
            "operation=sharedroster&username=j%C3%B6rg&domain=ex%C3%A4mple.de"
        );
        assert_eq!(*form(&[("a", "@")]), "a=%40");
    }

    fn j(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn auth_mapping_table() {
        assert_eq!(
            map_auth(&j(r#"{"result":"success","data":{"uid":"a"}}"#)),
            AuthReply::Accepted {
                uid: Some("a".into())
            }
        );
        // An older ojsxc, or a proxy that rewrote the body: success without a uid.
        for no_uid in [
            r#"{"result":"success"}"#,
            r#"{"result":"success","data":{"uid":""}}"#,
            r#"{"result":"success","data":{"uid":7}}"#,
            r#"{"result":"success","data":{"uid":"a\u0000b"}}"#,
            r#"{"result":"success","data":[]}"#,
        ] {
            assert_eq!(
                map_auth(&j(no_uid)),
                AuthReply::Accepted { uid: None },
                "{no_uid}"
            );
        }
        assert_eq!(map_auth(&j(r#"{"result":"noauth"}"#)), AuthReply::Rejected);
        assert_eq!(map_auth(&j(r#"{"result":"bar"}"#)), AuthReply::Rejected);
        assert_eq!(map_auth(&j(r#"{"result":1}"#)), AuthReply::Rejected);
        for unavailable in [
            r#"{"result":"error"}"#,
            r#"{"result":""}"#,
            r#"{"result":null}"#,
            r#"{"result":false}"#,
            "{}",
            "[]",
            "null",
            "0",
            r#"{"foo":"bar"}"#,
            r#"["result"]"#,
            r#""result""#,
        ] {
            assert!(
                matches!(map_auth(&j(unavailable)), AuthReply::Unavailable(_)),
                "{unavailable}"
            );
        }
    }

    #[test]
    fn isuser_mapping_table() {
        let ok = |v: &str| {
            map_isuser(&j(&format!(
                r#"{{"result":"success","data":{{"isUser":{v}}}}}"#
            )))
        };
        assert_eq!(ok("true"), UserExists::Yes);
        assert_eq!(ok("1"), UserExists::Yes);
        assert_eq!(ok(r#""1""#), UserExists::Yes);
        for no in ["false", "0", r#""0""#, r#""""#, "null"] {
            assert_eq!(ok(no), UserExists::No, "{no}");
        }
        for odd in [r#""yes""#, "2", "[]", "{}"] {
            assert!(matches!(ok(odd), UserExists::Unknown(_)), "{odd}");
        }
        for bad in [
            r#"{"result":"success"}"#,
            r#"{"result":"success","data":[]}"#,
            r#"{"result":"error"}"#,
            "[]",
            r#""x""#,
        ] {
            assert!(
                matches!(map_isuser(&j(bad)), UserExists::Unknown(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn roster_mapping() {
        let body = r#"{"result":"success","data":{"sharedRoster":{"alice":{"name":"Alice","groups":["T"]}}}}"#;
        let RosterReply::Roster(r) = map_roster(&j(body), body.into()) else {
            panic!()
        };
        assert_eq!(
            r.entries,
            vec![RosterEntry {
                uid: "alice".into(),
                name: Some("Alice".into()),
                groups: vec!["T".into()]
            }]
        );
        assert_eq!(r.body, body);
        let empty = r#"{"result":"success","data":{"sharedRoster":[]}}"#;
        let RosterReply::Roster(r) = map_roster(&j(empty), empty.into()) else {
            panic!()
        };
        assert!(r.entries.is_empty());
        assert!(matches!(
            map_roster(&j(r#"{"result":"error"}"#), String::new()),
            RosterReply::Unavailable(_)
        ));
    }
}
