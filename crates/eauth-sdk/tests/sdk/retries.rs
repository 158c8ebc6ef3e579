//! What is retried and what is not, the request's shape, and answers the real service does
//! not give on demand: against the scripted fake.

use std::time::Duration;

use eauth_sdk::{Client, Config, Error, SessionStatus, SessionToken, TotpSecret};
use serde_json::json;

use crate::{
    fake::{API_KEY, CLIENT_ID, FakeService, Reply},
    support::assert_not_connected,
};

fn secret() -> TotpSecret {
    TotpSecret::parse("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").expect("secret")
}

fn token_reply() -> Reply {
    Reply::success(json!({ "session_token": "aaa.bbb.ccc" }))
}

/// A client of `fake` whose attempts give up after `timeout`.
fn impatient(fake: &FakeService, timeout: Duration) -> Client {
    Client::new(Config {
        timeout,
        ..fake.config()
    })
    .expect("client")
}

#[tokio::test]
async fn requests_carry_the_key_json_and_the_guides_bodies() {
    let fake = FakeService::start([
        Reply::success(json!("")),
        Reply::success(json!("")),
        token_reply(),
        Reply::success(
            json!({"status": "PENDING", "email": "jane@example.com", "finished_at": null}),
        ),
    ])
    .await;
    let client = fake.client();
    client
        .enable_2fa("jane@example.com", &secret())
        .await
        .expect("enable");
    client
        .disable_2fa("jane@example.com")
        .await
        .expect("disable");
    let token = client
        .create_session("jane@example.com")
        .await
        .expect("token");
    assert_eq!(token.as_str(), "aaa.bbb.ccc");
    client.session_result(&token).await.expect("result");

    let received = fake.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/authen-api/api/v1/mfa/toggle",
            "/authen-api/api/v1/mfa/toggle",
            "/authen-api/api/v1/session-token",
            "/authen-api/api/v1/session-result",
        ]
    );
    for request in &received {
        assert_eq!(request.api_key.as_deref(), Some(API_KEY));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
    }
    assert_eq!(
        received[0].body,
        json!({
            "client_id": CLIENT_ID, "email": "jane@example.com",
            "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "action": "ENABLE",
            "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30,
        })
    );
    assert_eq!(
        received[1].body,
        json!({
            "client_id": CLIENT_ID, "email": "jane@example.com", "action": "DISABLE",
            "type": "TOTP", "algorithm": "SHA1", "digits": 6, "period": 30,
        })
    );
    assert_eq!(
        received[2].body,
        json!({ "client_id": CLIENT_ID, "email": "jane@example.com" })
    );
    assert_eq!(
        received[3].body,
        json!({ "client_id": CLIENT_ID, "session_token": "aaa.bbb.ccc" })
    );
}

#[tokio::test]
async fn every_call_is_retried_when_the_service_is_overloaded() {
    let fake = FakeService::start([
        Reply::overloaded(),
        Reply::success(json!("")),
        Reply::overloaded(),
        token_reply(),
        Reply::overloaded(),
        Reply::success(json!({"status": "APPROVED", "email": "jane@example.com", "finished_at": 1_700_000_000})),
    ])
    .await;
    let client = fake.client();
    client
        .enable_2fa("jane@example.com", &secret())
        .await
        .expect("enabled on the second attempt");
    let token = client
        .create_session("jane@example.com")
        .await
        .expect("created on the second attempt");
    let result = client.session_result(&token).await.expect("result");
    assert!(result.is_approved());
    assert_eq!(result.finished_at, Some(1_700_000_000));
    assert_eq!(fake.received().len(), 6);
}

#[tokio::test]
async fn overload_that_lasts_ends_in_overloaded_after_the_configured_attempts() {
    let fake = FakeService::start(vec![Reply::overloaded(); 5]).await;
    let client = Client::new(Config {
        max_attempts: 4,
        ..fake.config()
    })
    .expect("client");
    let error = client
        .disable_2fa("jane@example.com")
        .await
        .expect_err("overloaded");
    assert!(
        matches!(error, Error::Overloaded { retry_after: Some(d) } if d.is_zero()),
        "{error:?}"
    );
    assert_eq!(fake.received().len(), 4);
}

#[tokio::test]
async fn a_session_request_that_timed_out_is_never_sent_again() {
    // The service may have created the session before the answer was lost: a second request
    // would create a second one.
    let fake = FakeService::start([
        token_reply().after(Duration::from_millis(800)),
        token_reply(),
    ])
    .await;
    let client = impatient(&fake, Duration::from_millis(200));
    let error = client
        .create_session("jane@example.com")
        .await
        .expect_err("timeout");
    assert!(matches!(error, Error::Timeout), "{error:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn idempotent_calls_are_retried_after_a_timeout() {
    let slow = Duration::from_millis(800);
    let fake = FakeService::start([
        Reply::success(json!("")).after(slow),
        Reply::success(json!("")).after(slow),
        Reply::success(json!("")),
        Reply::success(json!({"status": "PENDING", "email": "a@example.com"})).after(slow),
        Reply::success(json!({"status": "PENDING", "email": "a@example.com"})),
    ])
    .await;
    let client = impatient(&fake, Duration::from_millis(200));
    client
        .enable_2fa("jane@example.com", &secret())
        .await
        .expect("third attempt");
    let result = client
        .session_result(&SessionToken::from("t".to_owned()))
        .await
        .expect("second attempt");
    assert_eq!(result.status, SessionStatus::Pending);
    assert_eq!(fake.received().len(), 5);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_as_transport() {
    // A port nobody listens on: the request certainly was not processed, so even
    // session-token may try again.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let client = Client::new(Config {
        base_url: format!("http://127.0.0.1:{port}"),
        client_id: CLIENT_ID.into(),
        api_key: API_KEY.into(),
        callback_secret: "ecs_fake".into(),
        ..Config::default()
    })
    .expect("client");
    let started = std::time::Instant::now();
    let error = client
        .create_session("jane@example.com")
        .await
        .expect_err("nobody listens");
    assert_not_connected(&error);
    // Three attempts: pauses of 100 and 200 ms between them.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn failures_that_a_retry_cannot_fix_are_reported_at_once() {
    let html =
        Reply::raw(502, "<html>Bad Gateway</html>".into()).header("content-type", "text/html");
    let fake = FakeService::start([
        Reply::envelope(500, "INTERNAL_ERROR", "internal error", json!("")),
        Reply::envelope(405, "METHOD_NOT_ALLOWED", "method not allowed", json!("")),
        Reply::envelope(429, "SLOW_DOWN", "too many requests", json!("")),
        html,
        Reply::raw(200, "x".repeat(70 * 1024)),
        Reply::success(json!({"token": "misnamed"})),
        Reply::success(json!({"status": "MAYBE", "email": "a@example.com"})),
        Reply::raw(307, String::new()).header("location", "https://elsewhere.example/steal"),
    ])
    .await;
    let client = fake.client();
    let email = "jane@example.com";
    let token = SessionToken::from("t".to_owned());

    let error = client.disable_2fa(email).await.expect_err("internal");
    assert!(matches!(error, Error::Internal), "{error:?}");
    let error = client.disable_2fa(email).await.expect_err("method");
    assert!(matches!(error, Error::MethodNotAllowed), "{error:?}");
    let error = client.disable_2fa(email).await.expect_err("unknown code");
    assert!(
        matches!(&error, Error::Other { code, message } if code == "SLOW_DOWN" && message == "too many requests"),
        "{error:?}"
    );
    let error = client.disable_2fa(email).await.expect_err("html");
    assert!(
        matches!(error, Error::MalformedResponse { status: 502, .. }),
        "{error:?}"
    );
    let error = client.disable_2fa(email).await.expect_err("huge");
    assert!(
        matches!(error, Error::MalformedResponse { status: 200, .. }),
        "{error:?}"
    );
    let error = client.create_session(email).await.expect_err("no token");
    assert!(
        matches!(error, Error::MalformedResponse { .. }),
        "{error:?}"
    );
    let error = client.session_result(&token).await.expect_err("bad status");
    assert!(
        matches!(&error, Error::MalformedResponse { reason, .. } if reason.contains("MAYBE")),
        "{error:?}"
    );
    // A redirect is not followed: it would carry the API key to another host.
    let error = client.disable_2fa(email).await.expect_err("redirect");
    assert!(
        matches!(error, Error::MalformedResponse { status: 307, .. }),
        "{error:?}"
    );

    assert_eq!(fake.received().len(), 8, "one request each");
}
