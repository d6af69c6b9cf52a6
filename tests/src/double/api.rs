//! The ojsxc external API proper: signature middleware and the three operations.

use std::collections::HashMap;

use super::directory::{Directory, Login};
use super::http::{Request, Response};
use super::php::{self, Json};
use super::sig::{self, Algo, PhpVersion};

/// The `Content-Type` of every JSON answer.
pub const JSON_TYPE: &str = "application/json; charset=utf-8";
/// The `Content-Type` of every HTML answer.
pub const HTML_TYPE: &str = "text/html; charset=utf-8";

/// A JSON response.
pub fn json(status: u16, body: &Json) -> Response {
    Response::new(status, JSON_TYPE, body.encode())
}

/// A small HTML page in the style of Nextcloud's error pages.
pub fn html(status: u16, title: &str, text: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html class=\"ng-csp\" data-placeholder-focus=\"false\" lang=\"en\">\n\
         <head><meta charset=\"utf-8\"><title>{title} - Nextcloud</title></head>\n\
         <body id=\"body-login\"><div class=\"guest-box\"><h2>{title}</h2><p>{text}</p></div>\
         </body>\n</html>\n"
    );
    Response::new(status, HTML_TYPE, body)
}

/// Nextcloud's generic error page (uncaught exception, JSON-encoding failure, …).
pub fn internal_error() -> Response {
    html(
        500,
        "Internal Server Error",
        "The server was unable to complete your request.",
    )
}

fn error(msg: &str) -> Response {
    json(
        500,
        &Json::obj([
            ("result", Json::str("error")),
            ("data", Json::obj([("msg", Json::str(msg))])),
        ]),
    )
}

/// `IRequest::getParam()` parameters: query string merged with the body (body wins); the body
/// counts only with a form or JSON content type.
pub fn params(req: &Request) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut map = HashMap::new();
    php::parse_form(req.query().as_bytes(), &mut map);
    let content_type = req.header_str("content-type").to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if content_type.contains("application/json") {
        php::parse_json_params(&req.body, &mut map);
    } else if mime == "application/x-www-form-urlencoded" {
        php::parse_form(&req.body, &mut map);
    }
    map
}

/// `ExternalApiMiddleware::beforeController`: `Err` carries the error response.
pub fn check_signature(
    req: &Request,
    secret: &str,
    php_version: PhpVersion,
) -> Result<(), Response> {
    let header = req.header("x-jsxc-signature");
    if php::empty(header.as_deref()) {
        return Err(error("HTTP header \"X-JSXC-Signature\" is missing."));
    }
    let header = header.unwrap_or_default();
    if php::empty(Some(secret.as_bytes())) {
        return Err(error("Missing secret."));
    }
    let (algo, hash) = match header.iter().position(|b| *b == b'=') {
        Some(eq) => (&header[..eq], &header[eq + 1..]),
        None => (&header[..], &b""[..]),
    };
    match sig::classify(algo, php_version) {
        Algo::Unknown => match std::str::from_utf8(algo) {
            Ok(algo) => Err(error(&format!("Hash algorithm '{algo}' is not supported."))),
            // json_encode fails on invalid UTF-8: Nextcloud's generic error page.
            Err(_) => Err(internal_error()),
        },
        Algo::Checksum => match php_version {
            PhpVersion::Php8 => Err(internal_error()),
            PhpVersion::Php7 => Err(error("Signature does not match.")),
        },
        Algo::Crypto => {
            let algo = std::str::from_utf8(algo).unwrap_or_default();
            match sig::hmac_hex(algo, secret.as_bytes(), &req.body) {
                Some(expected) if expected.as_bytes() == hash => Ok(()),
                _ => Err(error("Signature does not match.")),
            }
        }
    }
}

fn param<'a>(params: &'a HashMap<Vec<u8>, Vec<u8>>, name: &str) -> Option<&'a [u8]> {
    params.get(name.as_bytes()).map(Vec::as_slice)
}

fn at(user: &[u8], domain: &[u8]) -> Vec<u8> {
    let mut v = user.to_vec();
    v.push(b'@');
    v.extend_from_slice(domain);
    v
}

/// Dispatches a request whose signature has been checked.
pub fn dispatch(req: &Request, params: &HashMap<Vec<u8>, Vec<u8>>, dir: &Directory) -> Response {
    let username = param(params, "username");
    let domain = param(params, "domain");
    match param(params, "operation") {
        Some(b"auth") => auth(req, username, param(params, "password"), domain, dir),
        Some(b"isuser") => isuser(username, domain, dir),
        Some(b"sharedroster") => shared_roster(username, domain, dir),
        _ => error("Unsupported operation."),
    }
}

fn auth(
    req: &Request,
    username: Option<&[u8]>,
    password: Option<&[u8]>,
    domain: Option<&[u8]>,
    dir: &Directory,
) -> Response {
    let noauth = || json(200, &Json::obj([("result", Json::str("noauth"))]));
    let (Some(username), Some(password)) = (username, password) else {
        return noauth();
    };
    if php::empty(Some(username)) || php::empty(Some(password)) {
        return noauth();
    }
    let mut candidates = Vec::new();
    if let Some(domain) = domain.filter(|d| !php::empty(Some(d))) {
        candidates.push(at(username, domain));
    }
    candidates.push(username.to_vec());
    for login_name in candidates {
        if dir.get(&login_name).is_none() {
            continue;
        }
        match dir.login(&login_name, password) {
            Login::Success(uid) => {
                return json(
                    200,
                    &Json::obj([
                        ("result", Json::str("success")),
                        ("data", Json::obj([("uid", Json::Str(uid))])),
                    ]),
                );
            }
            Login::Disabled => return user_disabled(req),
            Login::Failed => {}
        }
    }
    noauth()
}

/// Nextcloud core's answer to `LoginException("User disabled")` (`index.php`).
fn user_disabled(req: &Request) -> Response {
    let accept = req.header_str("accept").to_ascii_lowercase();
    if accept.contains("html") {
        html(401, "User disabled", "User disabled")
    } else {
        json(401, &Json::obj([("message", Json::str("User disabled"))]))
    }
}

fn find_user<'a>(
    username: Option<&[u8]>,
    domain: Option<&[u8]>,
    dir: &'a Directory,
) -> Option<&'a super::directory::User> {
    let username = username.filter(|u| !php::empty(Some(u)))?;
    if let Some(domain) = domain.filter(|d| !php::empty(Some(d))) {
        if let Some(user) = dir.get(&at(username, domain)) {
            return Some(user);
        }
    }
    dir.get(username)
}

fn isuser(username: Option<&[u8]>, domain: Option<&[u8]>, dir: &Directory) -> Response {
    let exists = find_user(username, domain, dir).is_some();
    json(
        200,
        &Json::obj([
            ("result", Json::str("success")),
            ("data", Json::obj([("isUser", Json::Bool(exists))])),
        ]),
    )
}

fn shared_roster(username: Option<&[u8]>, domain: Option<&[u8]>, dir: &Directory) -> Response {
    let Some(user) = find_user(username, domain, dir) else {
        return error("Can't find user");
    };
    // PHP array: insertion order, one entry per member UID.
    let mut roster: Vec<(String, String, Vec<String>)> = Vec::new();
    for (group, members) in dir.groups_of(&user.uid) {
        for member in members {
            let idx = match roster.iter().position(|(uid, _, _)| *uid == member.uid) {
                Some(i) => i,
                None => {
                    roster.push((
                        member.uid.clone(),
                        member.shown_name().to_owned(),
                        Vec::new(),
                    ));
                    roster.len() - 1
                }
            };
            roster[idx].2.push(group.display_name.clone());
        }
    }
    let roster = Json::Obj(
        roster
            .into_iter()
            .map(|(uid, name, groups)| {
                let groups = Json::Arr(groups.into_iter().map(Json::Str).collect());
                (
                    uid,
                    Json::obj([("name", Json::Str(name)), ("groups", groups)]),
                )
            })
            .collect(),
    );
    json(
        200,
        &Json::obj([
            ("result", Json::str("success")),
            ("data", Json::obj([("sharedRoster", roster)])),
        ]),
    )
}
