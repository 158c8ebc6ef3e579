//! A device's life beyond push.rs: registration's own throttle (wrong codes counted per user
//! and per source address, never towards the sign-in's back-off or lock, with the same answers
//! whether or not anyone is enrolled) and a device removing itself (`DELETE /app-api/v1/device`).
//!
//! The service believes loopback's `X-Forwarded-For` here, so each request can come from an
//! address of its own.

use eauth_core::{
    ClientId, CodeRejected, DeviceId, SessionStatus,
    device::{CanonicalRequest, NONCE_HEADER, RequestNonce, SIGNATURE_HEADER, TIMESTAMP_HEADER},
    device_registration, signin,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{Answer, TestApp, TestApplication, token_id},
    push::{App, Headers, Scene, now},
    webview::{
        Browser, EMAIL, code_at, open_redirect, portal, session_token, status_of, wrong_code,
    },
};

backend_tests!(
    with |settings| settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    wrong_registration_codes_are_throttled_per_user_and_never_reach_the_sign_in,
    nobody_enrolled_and_a_locked_user_get_the_answers_of_a_wrong_code,
    one_address_is_throttled_after_twenty_failures_whoever_it_names,
    a_device_removes_itself_and_is_refused_from_then_on,
    a_removal_unsigned_signed_by_another_device_stale_or_replayed_removes_nothing,
);

const DEVICE_PATH: &str = "/app-api/v1/device";

/// One registration with a fresh key, as seen from `source`.
async fn register(
    app: &TestApp,
    portal: &TestApplication,
    email: &str,
    code: &str,
    source: &str,
) -> Answer {
    App::new(app)
        .register_from(portal, email, code, Some(source))
        .await
}

#[track_caller]
fn expect_answer(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!((answer.status, answer.code()), (status, code), "{answer:?}");
}

/// The seconds a THROTTLED answer asks to wait.
fn retry_after(answer: &Answer) -> i64 {
    expect_answer(answer, StatusCode::TOO_MANY_REQUESTS, "THROTTLED");
    answer.body["data"]["retry_after"]
        .as_i64()
        .expect("retry_after")
}

/// THROTTLED until the window `rule` began (a moment ago) ends.
#[track_caller]
fn expect_throttled_for_a_window_of(answer: &Answer, rule: device_registration::Throttle) {
    let wait = retry_after(answer);
    assert!(
        (rule.window_secs - 60..=rule.window_secs).contains(&wait),
        "until the window ends: {wait}"
    );
}

async fn wrong_registration_codes_are_throttled_per_user_and_never_reach_the_sign_in(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    // Each from an address of its own: only the user's limit is in play.
    for n in 0..device_registration::USER.limit - 1 {
        let answer = register(
            &app,
            &portal,
            EMAIL,
            &wrong_code(),
            &format!("198.51.100.{n}"),
        )
        .await;
        expect_answer(&answer, StatusCode::FORBIDDEN, "INVALID_CODE");
    }
    // A success, which takes the secret, forgets the user's failures...
    let answer = register(&app, &portal, EMAIL, &code_at(0), "198.51.100.200").await;
    expect_answer(&answer, StatusCode::CREATED, "SUCCESS");
    // ...so the limit counts from zero again (the second of these would be refused else).
    for n in 0..device_registration::USER.limit {
        let answer = register(
            &app,
            &portal,
            EMAIL,
            &wrong_code(),
            &format!("203.0.113.{n}"),
        )
        .await;
        expect_answer(&answer, StatusCode::FORBIDDEN, "INVALID_CODE");
    }
    let answer = register(&app, &portal, EMAIL, &wrong_code(), "203.0.113.100").await;
    expect_throttled_for_a_window_of(&answer, device_registration::USER);
    // Refused unchecked: the right code registers nothing and is not used up.
    let next = code_at(30);
    let answer = register(&app, &portal, EMAIL, &next, "203.0.113.101").await;
    retry_after(&answer);
    assert_eq!(app.device_count(&portal, EMAIL).await, 1);

    // The sign-in never heard of any of it: no failures, no back-off, no lock.
    let enrollment = app.enrollment(&portal, EMAIL).await;
    assert_eq!(
        (enrollment.consecutive_failures, enrollment.locked_at),
        (0, None),
        "registration failures are not sign-in failures"
    );
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let page = open_redirect(&browser, &token).await;
    let done = browser.post(&page.form(), "verify", &next).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}

async fn nobody_enrolled_and_a_locked_user_get_the_answers_of_a_wrong_code(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    // John is enrolled too, with his 2FA locked after too many wrong codes on the sign-in page.
    let john = "john@example.com";
    assert_eq!(app.enable(&portal, john).await.code(), "SUCCESS");
    let token = app.issued_token(&portal, john).await;
    app.store
        .attempt(token_id(&token), now(), &token, 0, |_, _| {
            Ok(signin::Verdict::Wrong {
                reason: CodeRejected::Wrong,
                attempts_left: 4,
                locked: true,
            })
        })
        .await
        .expect("locked");
    // Only someone holding John's secret learns that his 2FA is locked.
    let answer = register(&app, &portal, john, &code_at(0), "192.0.2.9").await;
    expect_answer(&answer, StatusCode::FORBIDDEN, "LOCKED");

    let nowhere = TestApplication {
        client_id: ClientId::generate(),
        api_key: String::new(),
        callback_secret: None,
    };
    let cases = [
        ("enrolled, wrong code", &portal, EMAIL, "192.0.2.1"),
        ("not enrolled", &portal, "nobody@example.com", "192.0.2.2"),
        ("locked, wrong code", &portal, john, "192.0.2.3"),
        ("no such application", &nowhere, EMAIL, "192.0.2.4"),
    ];
    for round in 0..=device_registration::USER.limit {
        let mut answers = Vec::new();
        for (case, portal, email, source) in cases {
            answers.push((
                case,
                register(&app, portal, email, &wrong_code(), source).await,
            ));
        }
        let (_, first) = &answers[0];
        for (case, answer) in &answers {
            if round < device_registration::USER.limit {
                expect_answer(answer, StatusCode::FORBIDDEN, "INVALID_CODE");
                assert_eq!(answer.body, first.body, "{case}, round {round}");
            } else {
                // Windows that began a second apart may end a second apart.
                let wait = retry_after(answer);
                assert!((wait - retry_after(first)).abs() <= 1, "{case}: {wait}");
                assert_eq!(answer.message(), first.message(), "{case}");
            }
        }
    }
}

async fn one_address_is_throttled_after_twenty_failures_whoever_it_names(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let source = "192.0.2.77";
    for n in 0..device_registration::ADDRESS.limit {
        let answer = register(
            &app,
            &portal,
            &format!("user{n}@example.com"),
            &wrong_code(),
            source,
        )
        .await;
        expect_answer(&answer, StatusCode::FORBIDDEN, "INVALID_CODE");
    }
    let answer = register(&app, &portal, "fresh@example.com", &wrong_code(), source).await;
    expect_throttled_for_a_window_of(&answer, device_registration::ADDRESS);
    // Everyone from that address, the right code included; nobody from elsewhere.
    let code = code_at(0);
    retry_after(&register(&app, &portal, EMAIL, &code, source).await);
    let answer = register(
        &app,
        &portal,
        "fresh@example.com",
        &wrong_code(),
        "192.0.2.78",
    )
    .await;
    expect_answer(&answer, StatusCode::FORBIDDEN, "INVALID_CODE");
    let answer = register(&app, &portal, EMAIL, &code, "192.0.2.78").await;
    expect_answer(&answer, StatusCode::CREATED, "SUCCESS");
}

/// A second device of the user, registered with the next code (the current one is used).
async fn second_device(app: &TestApp, portal: &TestApplication) -> App {
    let mut device = App::new(app);
    let answer = device.register(portal, EMAIL, &code_at(30)).await;
    expect_answer(&answer, StatusCode::CREATED, "SUCCESS");
    device
}

async fn device_exists(app: &TestApp, device: &App) -> bool {
    app.store
        .device(device.id.expect("registered"))
        .await
        .expect("store")
        .is_some()
}

async fn a_device_removes_itself_and_is_refused_from_then_on(app: TestApp) {
    let scene = Scene::new(&app).await;
    let other = second_device(&app, &scene.portal).await;

    let answer = scene.device.send("DELETE", DEVICE_PATH, "").await;
    expect_answer(&answer, StatusCode::OK, "SUCCESS");
    let id = scene.device.id.expect("registered").to_string();
    assert_eq!(answer.body["data"], json!({ "device_id": id }));
    assert!(!device_exists(&app, &scene.device).await);
    assert!(device_exists(&app, &other).await, "only itself");

    for answer in [
        scene.device.signins(None).await,
        scene.device.approve(&scene.signin(), scene.number).await,
        scene.device.deny(&scene.signin()).await,
        scene.device.send("DELETE", DEVICE_PATH, "{}").await,
    ] {
        expect_answer(&answer, StatusCode::UNAUTHORIZED, "UNKNOWN_DEVICE");
    }
    assert_eq!(
        status_of(&app, &scene.token).await,
        SessionStatus::Pending,
        "the sign-in is left alone"
    );
    let answer = other.approve(&scene.signin(), scene.number).await;
    expect_answer(&answer, StatusCode::OK, "SUCCESS");
}

async fn a_removal_unsigned_signed_by_another_device_stale_or_replayed_removes_nothing(
    app: TestApp,
) {
    let (portal, _receiver) = portal(&app).await;
    let device = App::registered(&app, &portal, EMAIL).await;
    let other = second_device(&app, &portal).await;

    // A nonce the device used in a request the service accepted.
    let listing = device.headers("GET", "/app-api/v1/signins", "");
    let answer = device
        .send_with("GET", "/app-api/v1/signins", &listing, "")
        .await;
    expect_answer(&answer, StatusCode::OK, "SUCCESS");
    let (_, used) = listing
        .iter()
        .find(|(name, _)| *name == NONCE_HEADER)
        .expect("nonce");
    let replayed: Headers = {
        let nonce = RequestNonce::parse(used).expect("nonce");
        let timestamp = now();
        let signature = CanonicalRequest {
            method: "DELETE",
            path_and_query: DEVICE_PATH,
            timestamp,
            nonce: &nonce,
            device: device.id,
            body: b"",
        }
        .sign(&device.key);
        device
            .headers("DELETE", DEVICE_PATH, "")
            .into_iter()
            .map(|(name, value)| match name {
                NONCE_HEADER => (name, nonce.as_str().to_owned()),
                TIMESTAMP_HEADER => (name, timestamp.to_string()),
                SIGNATURE_HEADER => (name, signature.to_base64url()),
                _ => (name, value),
            })
            .collect()
    };
    let unknown = App {
        id: Some(DeviceId::generate()),
        ..App::new(&app)
    };
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("unsigned", Vec::new(), "UNSIGNED"),
        (
            "signed by the other device's key",
            device.headers_with(&other.key, "DELETE", DEVICE_PATH, "", now()),
            "BAD_SIGNATURE",
        ),
        (
            "61 s old",
            device.headers_with(&device.key, "DELETE", DEVICE_PATH, "", now() - 61),
            "STALE_REQUEST",
        ),
        ("a used nonce", replayed, "REPLAYED_REQUEST"),
        (
            "an unknown device",
            unknown.headers("DELETE", DEVICE_PATH, ""),
            "UNKNOWN_DEVICE",
        ),
    ];
    for (case, headers, code) in cases {
        let answer = device.send_with("DELETE", DEVICE_PATH, &headers, "").await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, code),
            "{case}: {answer:?}"
        );
        assert!(device_exists(&app, &device).await, "{case}");
        assert!(device_exists(&app, &other).await, "{case}");
    }
    let answer = device.send("GET", DEVICE_PATH, "").await;
    expect_answer(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
    let answer = device.signins(None).await;
    expect_answer(&answer, StatusCode::OK, "SUCCESS");
}
