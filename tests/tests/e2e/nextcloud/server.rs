//! The server as a whole: `status.php`, maintenance mode, an untrusted host name, and the
//! server stopped and started again.

use std::io::ErrorKind;

use xcauth_tests::nextcloud::{Nextcloud, Request, ALICE};

use super::{assert_is, assert_refused};

#[test]
fn status_php_says_installed_version_and_maintenance() {
    let nc = Nextcloud::start("server-status");
    let reply = nc.send(&Request::get("/status.php"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let status = reply.json();
    assert_eq!(status["installed"], true, "{status}");
    assert_eq!(status["maintenance"], false, "{status}");
    assert_eq!(status["needsDbUpgrade"], false, "{status}");
    assert_eq!(status["versionstring"], "32.0.1", "{status}");
    assert_eq!(status["version"], "32.0.1.2", "{status}");
    assert_eq!(status["productname"], "Nextcloud", "{status}");
}

#[test]
fn maintenance_mode_answers_503_with_a_header_whatever_the_password() {
    let nc = Nextcloud::start("server-maintenance");
    nc.maintenance(true);
    let app = &nc.app_passwords().alice.secret;
    for (login, password) in [
        (ALICE.id, ALICE.password),
        (ALICE.id, "wrong"),
        (ALICE.id, app.as_str()),
    ] {
        let reply = nc.cloud_user(login, password);
        assert_eq!(reply.status, 503, "{reply:?}");
        assert_eq!(reply.header("X-Nextcloud-Maintenance-Mode"), Some("1"));
        assert_eq!(reply.ocs_statuscode(), 503, "{}", reply.text());
    }
    // status.php still answers, and says so.
    let status = nc.send(&Request::get("/status.php"));
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["maintenance"], true);

    nc.maintenance(false);
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);
    assert_eq!(
        nc.send(&Request::get("/status.php")).json()["maintenance"],
        false
    );
}

#[test]
fn an_untrusted_host_name_gets_an_html_400_even_with_a_right_password() {
    let nc = Nextcloud::start("server-host");
    let reply = nc.send(
        &Request::ocs("cloud/user")
            .basic(ALICE.id, ALICE.password)
            .host("cloud.example.org"),
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply
            .header("Content-Type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{reply:?}"
    );
    let status = nc.send(&Request::get("/status.php").host("cloud.example.org"));
    assert_eq!(status.status, 400, "{status:?}");
    // The trusted names: `localhost` (from the install) and 127.0.0.1 (added), any port.
    for host in ["localhost", "127.0.0.1", "127.0.0.1:1"] {
        let reply = nc.send(
            &Request::ocs("cloud/user")
                .basic(ALICE.id, ALICE.password)
                .host(host),
        );
        assert_is(&reply, &ALICE);
    }
}

#[test]
fn a_stopped_server_refuses_connections_and_starts_again_with_its_state() {
    let mut nc = Nextcloud::start("server-down");
    nc.revoke_app_password(&nc.app_passwords().alice);
    assert_refused(&nc.cloud_user(ALICE.id, &nc.app_passwords().alice.secret));
    nc.stop_server();
    let err = nc
        .try_send(&Request::ocs("cloud/user").basic(ALICE.id, ALICE.password))
        .expect_err("the server is stopped");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    nc.start_server();
    assert_is(&nc.cloud_user(ALICE.id, ALICE.password), &ALICE);
    assert_refused(&nc.cloud_user(ALICE.id, &nc.app_passwords().alice.secret));
}
