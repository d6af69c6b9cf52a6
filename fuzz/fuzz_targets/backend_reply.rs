//! The JSXC backend's answers: the client's own reply parsers
//! (`backend::jsxc::parse_auth_reply`, `parse_isuser_reply`, `parse_roster_reply`) on an
//! arbitrary response body. A reply never accepts a login unless the body is JSON with
//! `"result":"success"`, and never on a status other than 200.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcauth_core::backend::jsxc::{parse_auth_reply, parse_isuser_reply, parse_roster_reply};
use xcauth_core::vocab::AuthReply;

fuzz_target!(|data: &[u8]| {
    let auth = parse_auth_reply(200, data);
    if let AuthReply::Accepted { uid } = &auth {
        let json: serde_json::Value =
            serde_json::from_slice(data).expect("accepted a non-JSON body");
        assert_eq!(json["result"], "success", "accepted without success");
        if let Some(uid) = uid {
            assert!(!uid.is_empty() && !uid.contains('\0'));
        }
    }
    // Not 200: never an acceptance, whatever the body says.
    let status = data.first().map_or(500, |&b| 300 + u16::from(b));
    assert!(!matches!(
        parse_auth_reply(status, data),
        AuthReply::Accepted { .. }
    ));
    let _ = parse_isuser_reply(200, data);
    let _ = parse_roster_reply(200, data);
});
