//! `POST /authen-api/api/v1/mfa/toggle`.

use eauth_core::Email;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{backend_tests, helpers::TestApp};

backend_tests!(
    the_guides_example_enables_and_stores_the_secret_encrypted,
    enabling_again_replaces_the_secret_and_parameters,
    disable_removes_the_enrollment_and_is_idempotent,
    bad_toggles_get_the_envelope_with_a_reason_and_change_nothing,
    a_rotated_key_changes_nothing_at_once,
);

async fn the_guides_example_enables_and_stores_the_secret_encrypted(app: TestApp) {
    let portal = app.create_application().await;
    let answer = app.enable(&portal, "user@example.com").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({ "code": "SUCCESS", "message": "Success", "data": "" })
    );

    let email = Email::parse("user@example.com").expect("email");
    let enrollment = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("enrolled");
    let secret = data_encoding::BASE32_NOPAD
        .decode(crate::helpers::SECRET.as_bytes())
        .expect("base32");
    assert!(
        !enrollment
            .sealed_secret
            .windows(secret.len())
            .any(|window| window == secret),
        "the secret is not stored in clear"
    );
    assert_eq!(
        (enrollment.params.digits(), enrollment.params.period()),
        (6, 30)
    );
}

async fn enabling_again_replaces_the_secret_and_parameters(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let email = Email::parse("user@example.com").expect("email");
    let before = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("enrolled");

    let mut body = TestApp::enable_body(&portal, "user@example.com");
    body["secret"] = json!("gezdgnbvgy3tqojqgezdgnbvgy3tqojq====");
    body["algorithm"] = json!("SHA512");
    body["digits"] = json!(8);
    body["period"] = json!(60);
    assert_eq!(app.toggle(&portal, &body).await.code(), "SUCCESS");

    let after = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("enrolled");
    assert_ne!(after.sealed_secret, before.sealed_secret);
    assert_eq!((after.params.digits(), after.params.period()), (8, 60));
    assert_eq!(after.params.algorithm().as_str(), "SHA512");
}

async fn disable_removes_the_enrollment_and_is_idempotent(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    assert_eq!(
        app.disable(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    assert!(!app.is_enrolled(&portal, "user@example.com").await);
    assert_eq!(
        app.disable(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    assert_eq!(
        app.disable(&portal, "never@example.com").await.code(),
        "SUCCESS"
    );

    // The guide's full DISABLE body, with the optional secret, works too.
    app.enable(&portal, "user@example.com").await;
    let mut body = TestApp::enable_body(&portal, "user@example.com");
    body["action"] = json!("DISABLE");
    assert_eq!(app.toggle(&portal, &body).await.code(), "SUCCESS");
    assert!(!app.is_enrolled(&portal, "user@example.com").await);
}

async fn bad_toggles_get_the_envelope_with_a_reason_and_change_nothing(app: TestApp) {
    let portal = app.create_application().await;
    app.enable(&portal, "user@example.com").await;
    let email = Email::parse("user@example.com").expect("email");
    let before = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("enrolled");

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = TestApp::enable_body(&portal, "user@example.com");
        body["secret"] = json!("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        edit(&mut body);
        body
    };
    let remove = |field: &'static str| {
        move |body: &mut Value| {
            body.as_object_mut().expect("object").remove(field);
        }
    };
    let set =
        |field: &'static str, value: Value| move |body: &mut Value| body[field] = value.clone();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown action",
            with(&set("action", json!("TOGGLE"))),
            "action must be \"ENABLE\" or \"DISABLE\"",
        ),
        (
            "missing action",
            with(&remove("action")),
            "missing field `action`",
        ),
        (
            "type not TOTP",
            with(&set("type", json!("HOTP"))),
            "type must be \"TOTP\"",
        ),
        (
            "missing type",
            with(&remove("type")),
            "type is required to ENABLE",
        ),
        (
            "unknown algorithm",
            with(&set("algorithm", json!("MD5"))),
            "algorithm must be SHA1, SHA256 or SHA512",
        ),
        (
            "missing algorithm",
            with(&remove("algorithm")),
            "algorithm is required to ENABLE",
        ),
        (
            "5 digits",
            with(&set("digits", json!(5))),
            "digits must be 6, 7 or 8",
        ),
        (
            "9 digits",
            with(&set("digits", json!(9))),
            "digits must be 6, 7 or 8",
        ),
        (
            "digits as text",
            with(&set("digits", json!("6"))),
            "invalid type",
        ),
        (
            "missing digits",
            with(&remove("digits")),
            "digits is required to ENABLE",
        ),
        (
            "period too short",
            with(&set("period", json!(10))),
            "period must be between 15 and 300 seconds",
        ),
        (
            "period too long",
            with(&set("period", json!(301))),
            "period must be between 15 and 300 seconds",
        ),
        (
            "missing period",
            with(&remove("period")),
            "period is required to ENABLE",
        ),
        (
            "missing secret",
            with(&remove("secret")),
            "secret is required to ENABLE",
        ),
        (
            "empty secret",
            with(&set("secret", json!(""))),
            "secret is empty",
        ),
        (
            "secret not base32",
            with(&set("secret", json!("not base32!"))),
            "secret is not valid base32",
        ),
        (
            "80-bit secret",
            with(&set("secret", json!("JBSWY3DPEHPK3PXP"))),
            "secret is shorter than 128 bits",
        ),
        (
            "huge secret",
            with(&set("secret", json!("A".repeat(4000)))),
            "secret is longer than 1024 bits",
        ),
        (
            "invalid email",
            with(&set("email", json!("jane"))),
            "email is not a valid address",
        ),
        (
            "unknown field",
            with(&set("issuer", json!("x"))),
            "unknown field `issuer`",
        ),
        (
            "DISABLE with an invalid TOTP field",
            with(&|body: &mut Value| {
                body["action"] = json!("DISABLE");
                body["digits"] = json!(12);
            }),
            "digits must be 6, 7 or 8",
        ),
    ];
    for (case, body, reason) in cases {
        let answer = app.toggle(&portal, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {:?}",
            answer.body
        );
        assert_eq!(answer.code(), "INVALID_REQUEST", "{case}");
        assert!(
            answer.message().starts_with("toggle failed: "),
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
    let after = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("still enrolled");
    assert_eq!(
        after.sealed_secret, before.sealed_secret,
        "no bad request changed the enrollment"
    );
}

/// Rotated by another process (`eauthd admin`) while the service holds a copy of the
/// application: ENABLE and DISABLE with the old key are refused at once and change nothing;
/// the new key works at once.
async fn a_rotated_key_changes_nothing_at_once(app: TestApp) {
    let portal = app.create_application().await;
    assert_eq!(
        app.enable(&portal, "user@example.com").await.code(),
        "SUCCESS"
    );
    let before = app.enrollment(&portal, "user@example.com").await;
    let rotated = app.rotate_key(&portal).await;

    let mut other_secret = TestApp::enable_body(&portal, "user@example.com");
    other_secret["digits"] = json!(8);
    assert_eq!(
        app.toggle(&portal, &other_secret).await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(
        app.enable(&portal, "new@example.com").await.code(),
        "INVALID_API_KEY"
    );
    assert_eq!(
        app.disable(&portal, "user@example.com").await.code(),
        "INVALID_API_KEY"
    );
    let after = app.enrollment(&portal, "user@example.com").await;
    assert_eq!(
        (after.sealed_secret, after.params.digits()),
        (before.sealed_secret, before.params.digits()),
        "the enrollment is untouched"
    );
    assert!(!app.is_enrolled(&portal, "new@example.com").await);

    assert_eq!(app.toggle(&rotated, &other_secret).await.code(), "SUCCESS");
    assert_eq!(
        app.enrollment(&portal, "user@example.com")
            .await
            .params
            .digits(),
        8
    );
}
