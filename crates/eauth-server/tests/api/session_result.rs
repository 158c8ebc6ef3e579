//! `POST /authen-api/api/v1/session-result`.

use reqwest::StatusCode;
use serde_json::json;

use crate::{backend_tests, helpers::TestApp};

backend_tests!(
    a_session_result_answers_the_status_only_to_its_application,
    a_rotated_key_reads_nothing_at_once,
);

async fn a_session_result_answers_the_status_only_to_its_application(app: TestApp) {
    let portal = app.create_application().await;
    let other = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let answer = app.session_token(&portal, "user@example.com").await;
    let token = answer.body["data"]["session_token"]
        .as_str()
        .expect("token")
        .to_owned();
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
    let answer = app.session_token(&portal, "user@example.com").await;
    let token = answer.body["data"]["session_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let path = "/authen-api/api/v1/session-result";
    let ask = |key: &str, token: &str| {
        let body = json!({ "client_id": portal.client_id.to_string(), "session_token": token });
        let (app, key) = (&app, key.to_owned());
        async move { app.post(path, &key, &body).await }
    };
    assert_eq!(ask(&portal.api_key, &token).await.code(), "SUCCESS");

    let admin = app.admin().await;
    let rotate = || async {
        admin
            .rotate_api_key(&portal.client_id.to_string())
            .await
            .expect("rotate")
    };
    // Refused as malformed by the copy, the old key must still be refused as such.
    let second = rotate().await;
    assert_eq!(
        ask(&portal.api_key, "a.b.c").await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(ask(second.expose(), &token).await.code(), "SUCCESS");
    // Admitted by the copy, the read of the session finds the application changed.
    let third = rotate().await;
    assert_eq!(ask(second.expose(), &token).await.code(), "INVALID_API_KEY");
    assert_eq!(ask(third.expose(), &token).await.code(), "SUCCESS");
    admin.close().await;
}
