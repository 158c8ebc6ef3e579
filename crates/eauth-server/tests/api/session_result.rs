//! `POST /authen-api/api/v1/session-result`.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{TestApp, TestApplication},
};

backend_tests!(
    a_session_result_answers_the_status_only_to_its_application,
    a_rotated_key_reads_nothing_at_once,
);

async fn a_session_result_answers_the_status_only_to_its_application(app: TestApp) {
    let portal = app.create_application().await;
    let other = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let token = app.issued_token(&portal, "user@example.com").await;
    let path = "/authen-api/api/v1/session-result";

    let result = app
        .post(
            path,
            &portal.api_key,
            &json!({ "client_id": portal.client_id.to_string(), "session_token": token }),
        )
        .await;
    assert_eq!(result.status, StatusCode::OK);
    assert_eq!(
        result.body["data"],
        json!({ "status": "PENDING", "email": "user@example.com", "finished_at": null })
    );

    // Another application, with its own valid key, learns nothing of this session.
    let foreign = app
        .post(
            path,
            &other.api_key,
            &json!({ "client_id": other.client_id.to_string(), "session_token": token }),
        )
        .await;
    assert_eq!(foreign.code(), "INVALID_REQUEST");
    assert_eq!(
        foreign.message(),
        "get session result failed: session_token is not a session of this application"
    );
    for bad in ["", "a.b.c", "not a token"] {
        let answer = app
            .post(
                path,
                &portal.api_key,
                &json!({ "client_id": portal.client_id.to_string(), "session_token": bad }),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            "{bad:?}"
        );
    }
    let missing = app
        .post(
            path,
            &portal.api_key,
            &json!({ "client_id": portal.client_id.to_string() }),
        )
        .await;
    assert!(missing.message().contains("missing field `session_token`"));
    let wrong_key = app
        .post(
            path,
            &other.api_key,
            &json!({ "client_id": portal.client_id.to_string(), "session_token": token }),
        )
        .await;
    assert_eq!(wrong_key.code(), "INVALID_API_KEY");
}

/// Rotated by another process (`eauthd admin`) while the service holds a copy of the
/// application: the old key learns nothing at once, whatever token it sends; the new key reads.
async fn a_rotated_key_reads_nothing_at_once(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let token = app.issued_token(&portal, "user@example.com").await;
    let ask = |key: &TestApplication, token: &str| {
        let body = json!({ "client_id": portal.client_id.to_string(), "session_token": token });
        let (app, key) = (&app, key.api_key.clone());
        async move {
            app.post("/authen-api/api/v1/session-result", &key, &body)
                .await
                .code()
                .to_owned()
        }
    };
    assert_eq!(ask(&portal, &token).await, "SUCCESS");

    // Refused as malformed by the copy, the old key must still be refused as such.
    let second = app.rotate_key(&portal).await;
    assert_eq!(ask(&portal, "a.b.c").await, "INVALID_API_KEY");
    assert_eq!(ask(&second, &token).await, "SUCCESS");
    // Admitted by the copy, the read of the session finds the application changed.
    let third = app.rotate_key(&second).await;
    assert_eq!(ask(&second, &token).await, "INVALID_API_KEY");
    assert_eq!(ask(&third, &token).await, "SUCCESS");
}
