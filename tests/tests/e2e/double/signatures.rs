//! The signature middleware: test vectors, the order of its checks and its messages.

use xcauth_tests::double::client::{form_encode, quote_plus, Client};
use xcauth_tests::double::sig::hmac_hex;
use xcauth_tests::double::{sign, sign_with, BackendDouble, PhpVersion, User, API_PATH};

use super::{assert_json, backend, error_body, post_sig, IS_USER, SECRET};

#[test]
fn signature_test_vectors() {
    let vectors = [
        (
            "testsecret",
            "operation=isuser&username=good&domain=example.org",
            "sha1=0154f7921267dab6283ffb5a700544e6a8537e55",
        ),
        (
            "0123456789ABCDEF",
            "operation=isuser&username=good&domain=example.org",
            "sha1=e93630b20b500c826dc41326edecc2cb3d6d2f52",
        ),
        (
            "testsecret",
            "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A",
            "sha1=f00feaaf791326f413d4ded2496149a01ad43ddf",
        ),
        (
            "0123456789ABCDEF",
            "operation=auth&username=jane.doe&domain=example.com&password=p4ss+w0rd%3A%2B%26%3D%2F~_.-%2A",
            "sha1=1dfa099535d287082934b34239bca8a3e9d827b8",
        ),
        (
            "testsecret",
            "operation=sharedroster&username=j%C3%B6rg&domain=ex%C3%A4mple.de",
            "sha1=7363ea003f7cefdeff8c73d81189cb255fafedc3",
        ),
        (
            "testsecret",
            "operation=auth&username=good&domain=e&password=p%C3%A4ssw%C3%B6rd",
            "sha1=b4d95863898965f314bfc85692332bc8340154c3",
        ),
        (
            "testsecret",
            "operation=auth&username=good&domain=example.org&password=pw",
            "sha1=80a4ff986d4e07fca3d3f6b91305c197553f7628",
        ),
    ];
    // The form encoding reproduces the bodies too.
    assert_eq!(
        form_encode(&[
            ("operation", "auth"),
            ("username", "jane.doe"),
            ("domain", "example.com"),
            ("password", "p4ss w0rd:+&=/~_.-*"),
        ]),
        vectors[2].1
    );
    assert_eq!(
        form_encode(&[
            ("operation", "sharedroster"),
            ("username", "jörg"),
            ("domain", "exämple.de"),
        ]),
        vectors[4].1
    );
    assert_eq!(quote_plus("a@b"), "a%40b");
    for (secret, body, header) in vectors {
        assert_eq!(sign(secret, body.as_bytes()), header, "{secret} {body}");
        // The server accepts exactly these headers.
        let b = BackendDouble::start(secret);
        b.add_user(User::new("good", "pw"));
        b.add_user(User::new("jörg", "pw"));
        let resp = post_sig(&b, Some(header), body);
        assert_eq!(resp.status, 200, "{body}: {}", resp.text());
        assert!(resp.text().starts_with(r#"{"result":"#));
    }
    let b = backend();
    let body = "operation=auth&username=good&domain=example.org&password=pw";
    assert_json(
        &post_sig(
            &b,
            Some("sha1=80a4ff986d4e07fca3d3f6b91305c197553f7628"),
            body,
        ),
        200,
        r#"{"result":"success","data":{"uid":"good"}}"#,
    );
}

#[test]
fn signature_check_order_and_messages() {
    let b = backend();
    let body = "operation=isuser&username=good";
    let missing = error_body(r#"HTTP header \"X-JSXC-Signature\" is missing."#);
    assert_json(&post_sig(&b, None, body), 500, &missing);
    assert_json(&post_sig(&b, Some(""), body), 500, &missing);
    assert_json(&post_sig(&b, Some("0"), body), 500, &missing);
    // Header name is case-insensitive.
    let resp = Client::connect(b.addr())
        .unwrap()
        .request(
            "POST",
            API_PATH,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-jsxc-signature", &sign(SECRET, body.as_bytes())),
            ],
            body.as_bytes(),
        )
        .unwrap();
    assert_json(&resp, 200, IS_USER);

    let unsupported = |a: &str| error_body(&format!("Hash algorithm '{a}' is not supported."));
    assert_json(&post_sig(&b, Some("foo"), body), 500, &unsupported("foo"));
    assert_json(
        &post_sig(&b, Some("foo=abc=def"), body),
        500,
        &unsupported("foo"),
    );
    assert_json(
        &post_sig(&b, Some("SHA1=abc"), body),
        500,
        &unsupported("SHA1"),
    );
    let nomatch = error_body("Signature does not match.");
    assert_json(&post_sig(&b, Some("sha1="), body), 500, &nomatch);
    assert_json(&post_sig(&b, Some("sha1"), body), 500, &nomatch);

    // Other algorithms PHP knows are accepted, lower-case hex only.
    for algo in [
        "sha256",
        "md5",
        "sha512",
        "sha3-256",
        "ripemd160",
        "whirlpool",
        "sha512/256",
    ] {
        let sig = sign_with(algo, SECRET, body.as_bytes()).unwrap();
        assert_json(&post_sig(&b, Some(&sig), body), 200, IS_USER);
    }
    let upper = format!(
        "sha1={}",
        hmac_hex("sha1", SECRET.as_bytes(), body.as_bytes()).unwrap()
    )
    .to_uppercase()
    .replacen("SHA1", "sha1", 1);
    assert_json(&post_sig(&b, Some(&upper), body), 500, &nomatch);
    // Wrong secret, altered body.
    let wrong = sign("other", body.as_bytes());
    assert_json(&post_sig(&b, Some(&wrong), body), 500, &nomatch);
    let sig = sign(SECRET, body.as_bytes());
    assert_json(
        &post_sig(&b, Some(&sig), "operation=isuser&username=goo"),
        500,
        &nomatch,
    );
    // Known but unimplemented crypto algorithm: no match.
    assert_json(&post_sig(&b, Some("md4=00"), body), 500, &nomatch);

    // Checksums: PHP 8 throws (generic HTML 500), PHP 7 says "does not match".
    let resp = post_sig(&b, Some("crc32=00000000"), body);
    assert_eq!(resp.status, 500);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    b.set_php_version(PhpVersion::Php7);
    assert_json(&post_sig(&b, Some("crc32=00000000"), body), 500, &nomatch);
    assert_json(
        &post_sig(&b, Some("xxh3=00"), body),
        500,
        &unsupported("xxh3"),
    );
    b.set_php_version(PhpVersion::Php8);

    // Missing secret comes after the header check and before the algorithm check.
    let no_secret = error_body("Missing secret.");
    b.set_secret("");
    assert_json(&post_sig(&b, None, body), 500, &missing);
    assert_json(&post_sig(&b, Some("foo"), body), 500, &no_secret);
    assert_json(&post_sig(&b, Some(&sig), body), 500, &no_secret);
    b.set_secret("0");
    assert_json(&post_sig(&b, Some(&sig), body), 500, &no_secret);
    b.set_secret("new secret");
    assert_json(&post_sig(&b, Some(&sig), body), 500, &nomatch);
    let sig = sign("new secret", body.as_bytes());
    assert_json(&post_sig(&b, Some(&sig), body), 200, IS_USER);
}
