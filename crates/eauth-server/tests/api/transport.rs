//! What reaches the API at all: TLS only, the IP whitelist and trusted proxies, unknown routes.

use eauth_store::testing::Backend;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    backend_tests,
    helpers::{TestApp, spawn_app_with},
};

backend_tests!(
    plain_http_gets_no_http_answer,
    a_source_outside_the_whitelist_is_refused,
    forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy,
    unknown_endpoints_and_methods_answer_in_the_envelope,
);

async fn plain_http_gets_no_http_answer(app: TestApp) {
    let mut stream = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    // The TLS layer may send an alert before closing; it must never be an HTTP response.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

async fn a_source_outside_the_whitelist_is_refused(app: TestApp) {
    let portal = app
        .create_application_for(&["203.0.113.0/24", "2001:db8::/32"])
        .await;
    let answer = app.enable(&portal, "user@example.com").await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "IP_NOT_ALLOWED")
    );
    assert_eq!(
        answer.message(),
        "address 127.0.0.1 is not in the application's IP whitelist"
    );
    assert!(!app.is_enrolled(&portal, "user@example.com").await);
    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "IP_NOT_ALLOWED"
    );
}

async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(app: TestApp) {
    let portal = app.create_application_for(&["203.0.113.0/24"]).await;
    let body = TestApp::enable_body(&portal, "user@example.com").to_string();
    let headers = [
        ("x-api-key", portal.api_key.as_str()),
        ("content-type", "application/json"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    let path = "/authen-api/api/v1/mfa/toggle";
    let answer = app.post_raw(path, &headers, body.clone()).await;
    assert_eq!(
        answer.code(),
        "IP_NOT_ALLOWED",
        "a client cannot claim an address"
    );

    // The same request through a server that trusts its loopback peer as a proxy.
    let backend = if app.settings.database_url().starts_with("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let proxied = spawn_app_with(backend, |settings| {
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await
    .expect("same backend as the first server");
    let portal = proxied.create_application_for(&["203.0.113.0/24"]).await;
    let body = TestApp::enable_body(&portal, "user@example.com").to_string();
    let mut headers = headers;
    headers[0].1 = &portal.api_key;
    assert_eq!(
        proxied.post_raw(path, &headers, body.clone()).await.code(),
        "SUCCESS"
    );
    // A spoofed hop left of the proxy's entry does not help an outside client.
    headers[2].1 = "203.0.113.9, 198.51.100.1";
    assert_eq!(
        proxied.post_raw(path, &headers, body).await.code(),
        "IP_NOT_ALLOWED"
    );
}

async fn unknown_endpoints_and_methods_answer_in_the_envelope(app: TestApp) {
    let answer = app
        .post_raw("/authen-api/api/v1/session-tokens", &[], "")
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let response = app
        .client
        .get(format!("{}/authen-api/api/v1/session-token", app.base_url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}
