//! `POST /authen-api/api/v1/session-token`.

use eauth_core::SessionStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    backend_tests,
    helpers::{TestApp, TestApplication},
};

backend_tests!(
    the_guides_example_answers_success_with_a_signed_recorded_session,
    an_inactive_application_gets_exactly_the_guides_inactive_answer,
    a_user_without_2fa_gets_mfa_not_enabled,
    a_locked_user_gets_mfa_locked_until_enabled_again,
    emails_are_trimmed_and_compared_case_insensitively,
    a_wrong_or_missing_api_key_is_refused,
    the_key_of_one_application_does_not_open_another,
    a_rotated_key_stops_working_at_once,
    bad_requests_get_the_envelope_with_a_reason_and_write_nothing,
);

fn claims_of(token: &str) -> (Value, Value) {
    let part = |i: usize| {
        let encoded = token.split('.').nth(i).expect("JWT part");
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(encoded.as_bytes())
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("JSON")
    };
    (part(0), part(1))
}

async fn the_guides_example_answers_success_with_a_signed_recorded_session(app: TestApp) {
    let portal = app.create_application().await;
    assert_eq!(
        app.enable(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );

    let answer = app.session_token(&portal, "user@example.com").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["code"], "SUCCESS");
    assert_eq!(answer.body["message"], "Success");
    let token = answer.body["data"]["session_token"]
        .as_str()
        .expect("token");

    let (header, claims) = claims_of(token);
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert_eq!(claims["email"], "user@example.com");
    assert_eq!(claims["client_id"], portal.client_id.to_string());
    assert_eq!(claims["aud"], portal.client_id.to_string());
    assert_eq!(claims["iss"], app.base_url);
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 120);

    let id = Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("uuid");
    let session = app
        .store
        .session(id)
        .await
        .expect("store")
        .expect("recorded before SUCCESS");
    assert_eq!(session.status, SessionStatus::Pending);
    assert_eq!(session.expires_at, exp);

    let again = app.session_token(&portal, "user@example.com").await;
    let (_, again) = claims_of(again.body["data"]["session_token"].as_str().expect("token"));
    assert_ne!(again["jti"], claims["jti"], "each session is unique");
}

async fn an_inactive_application_gets_exactly_the_guides_inactive_answer(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let admin = app.admin().await;
    admin
        .set_active(&portal.client_id.to_string(), false)
        .await
        .expect("deactivate");

    let answer = app.session_token(&portal, "user@example.com").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.body,
        json!({ "code": "INACTIVE", "message": "client not active", "data": null })
    );
    assert_eq!(
        app.enable(&portal, "user@example.com").await.code(),
        "INACTIVE"
    );

    admin
        .set_active(&portal.client_id.to_string(), true)
        .await
        .expect("reactivate");
    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    admin.close().await;
}

async fn a_user_without_2fa_gets_mfa_not_enabled(app: TestApp) {
    let portal = app.create_application().await;
    let answer = app.session_token(&portal, "nobody@example.com").await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "MFA_NOT_ENABLED")
    );

    app.enable(&portal, "user@example.com").await;
    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    app.disable(&portal, "user@example.com").await;
    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "MFA_NOT_ENABLED"
    );
}

async fn emails_are_trimmed_and_compared_case_insensitively(app: TestApp) {
    let portal = app.create_application().await;
    assert_eq!(
        app.enable(&portal, "  Jane.Doe@Example.COM ").await.code(),
        "SUCCESS"
    );
    let answer = app.session_token(&portal, "jane.doe@example.com").await;
    assert_eq!(answer.code(), "SUCCESS");
    let (_, claims) = claims_of(
        answer.body["data"]["session_token"]
            .as_str()
            .expect("token"),
    );
    assert_eq!(claims["email"], "jane.doe@example.com");
}

async fn a_wrong_or_missing_api_key_is_refused(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let body = json!({ "email": "user@example.com", "client_id": portal.client_id.to_string() })
        .to_string();
    let path = "/authen-api/api/v1/session-token";
    for key in [
        "",
        "eak_wrong",
        &portal.api_key.to_uppercase(),
        &format!("{} ", portal.api_key),
    ] {
        let answer = app
            .post(path, key, &serde_json::from_str(&body).expect("json"))
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, "INVALID_API_KEY"),
            "key {key:?}"
        );
    }
    let answer = app
        .post_raw(path, &[("content-type", "application/json")], body.clone())
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_API_KEY")
    );

    let unknown = TestApplication {
        client_id: eauth_core::ClientId::generate(),
        api_key: portal.api_key.clone(),
        callback_secret: None,
    };
    assert_eq!(
        app.session_token(&unknown, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
}

async fn the_key_of_one_application_does_not_open_another(app: TestApp) {
    let (a, b) = (
        app.create_application().await,
        app.create_application().await,
    );
    app.enable(&b, "user@example.com").await;
    let crossed = TestApplication {
        client_id: b.client_id,
        api_key: a.api_key.clone(),
        callback_secret: None,
    };
    assert_eq!(
        app.session_token(&crossed, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(
        app.disable(&crossed, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
    assert!(
        app.is_enrolled(&b, "user@example.com").await,
        "nothing changed"
    );
}

/// Rotated by another process (`eauthd admin`), while the service holds a copy of the
/// application it read before: the old key is refused at once and writes nothing, the new one
/// works at once.
async fn a_rotated_key_stops_working_at_once(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    app.issued_token(&portal, "user@example.com").await;
    let sessions = || async {
        app.store
            .session_count(portal.client_id)
            .await
            .expect("count")
    };
    let before = sessions().await;
    let second = app.rotate_key(&portal).await;

    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(sessions().await, before, "the old key wrote nothing");
    app.issued_token(&second, "user@example.com").await;

    // The new key is taken at once too, where the copy knows only the one before.
    let third = app.rotate_key(&second).await;
    app.issued_token(&third, "user@example.com").await;
    assert_eq!(
        app.session_token(&second, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(sessions().await, before + 2);
}

async fn bad_requests_get_the_envelope_with_a_reason_and_write_nothing(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let client_id = portal.client_id.to_string();
    const JSON: &str = "application/json";
    let long_email = format!("{}@example.com", "a".repeat(300));
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        ("malformed JSON", JSON, "{\"email\": ".into(), StatusCode::BAD_REQUEST, "invalid JSON body"),
        ("not an object", JSON, "[]".into(), StatusCode::BAD_REQUEST, "invalid JSON body"),
        ("empty body", JSON, String::new(), StatusCode::BAD_REQUEST, "invalid JSON body"),
        (
            "wrong content type",
            "text/plain",
            json!({ "email": "user@example.com", "client_id": client_id }).to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        (
            "missing email",
            JSON,
            json!({ "client_id": client_id }).to_string(),
            StatusCode::BAD_REQUEST,
            "missing field `email`",
        ),
        (
            "missing client_id",
            JSON,
            json!({ "email": "user@example.com" }).to_string(),
            StatusCode::BAD_REQUEST,
            "missing field `client_id`",
        ),
        (
            "unknown field",
            JSON,
            json!({ "email": "user@example.com", "client_id": client_id, "clientId": "x" }).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown field `clientId`",
        ),
        (
            "email of the wrong type",
            JSON,
            json!({ "email": 42, "client_id": client_id }).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            "invalid email",
            JSON,
            json!({ "email": "not-an-email", "client_id": client_id }).to_string(),
            StatusCode::BAD_REQUEST,
            "email is not a valid address",
        ),
        (
            "extra-long email",
            JSON,
            json!({ "email": long_email, "client_id": client_id }).to_string(),
            StatusCode::BAD_REQUEST,
            "email is longer than 254 characters",
        ),
        (
            "invalid client_id",
            JSON,
            json!({ "email": "user@example.com", "client_id": "84c2ad6c" }).to_string(),
            StatusCode::BAD_REQUEST,
            "client_id is not a UUID",
        ),
        (
            "body over 16 KiB",
            JSON,
            json!({ "email": "user@example.com", "client_id": client_id, "pad": "x".repeat(17 * 1024) }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 16 KiB",
        ),
    ];
    for (case, content_type, body, status, reason) in cases {
        let headers = [
            ("x-api-key", portal.api_key.as_str()),
            ("content-type", content_type),
        ];
        let answer = app
            .post_raw("/authen-api/api/v1/session-token", &headers, body)
            .await;
        assert_eq!(answer.status, status, "{case}: {:?}", answer.body);
        assert_eq!(answer.code(), "INVALID_REQUEST", "{case}");
        assert!(
            answer.message().starts_with("get session token failed: "),
            "{case}: {}",
            answer.message()
        );
        assert!(
            answer.message().contains(reason),
            "{case}: {}",
            answer.message()
        );
        assert_eq!(answer.body["data"], "", "{case}");
    }
    let sessions = app
        .store
        .session_count(portal.client_id)
        .await
        .expect("count");
    assert_eq!(sessions, 0, "no bad request wrote a session");
}

async fn a_locked_user_gets_mfa_locked_until_enabled_again(app: TestApp) {
    use eauth_core::{CodeRejected, signin::Verdict};

    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let token = app.issued_token(&portal, "user@example.com").await;
    // The hundredth wrong code, as the sign-in page would record it.
    let claims = token.split('.').nth(1).expect("claims");
    let claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(claims.as_bytes())
            .expect("b64"),
    )
    .expect("json");
    let id = Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("uuid");
    let locking = Verdict::Wrong {
        reason: CodeRejected::Wrong,
        attempts_left: 4,
        locked: true,
    };
    app.store
        .attempt(
            id,
            claims["iat"].as_i64().expect("iat"),
            &token,
            0,
            move |_, _| Ok(locking),
        )
        .await
        .expect("attempt");

    let answer = app.session_token(&portal, "user@example.com").await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "MFA_LOCKED")
    );
    assert_eq!(
        app.store
            .session_count(portal.client_id)
            .await
            .expect("count"),
        1,
        "no session written"
    );
    assert_eq!(
        app.enable(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    assert_eq!(
        app.session_token(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
}
