//! A device's life beyond push.rs: registration's own throttle (wrong codes counted per user
//! and per source address, never towards the sign-in's back-off or lock, with the same answers
//! whether or not anyone is enrolled).
//!
//! The service believes loopback's `X-Forwarded-For` here, so each request can come from an
//! address of its own.

use eauth_core::{ClientId, CodeRejected, Email, device_registration, signin};
use reqwest::StatusCode;

use crate::{
    backend_tests,
    helpers::{Answer, TestApp, TestApplication, token_id},
    push::{App, now},
    webview::{Browser, EMAIL, code_at, open_redirect, portal, session_token, wrong_code},
};

backend_tests!(
    with |settings| settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    wrong_registration_codes_are_throttled_per_user_and_never_reach_the_sign_in,
    nobody_enrolled_and_a_locked_user_get_the_answers_of_a_wrong_code,
    one_address_is_throttled_after_twenty_failures_whoever_it_names,
);

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

async fn devices_of(app: &TestApp, portal: &TestApplication, email: &str) -> usize {
    let email = Email::parse(email).expect("email");
    app.store
        .devices_of(portal.client_id, &email)
        .await
        .expect("store")
        .len()
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
    let wait = retry_after(&answer);
    assert!(
        (device_registration::USER.window_secs - 60..=device_registration::USER.window_secs)
            .contains(&wait),
        "until the day's window ends: {wait}"
    );
    // Refused unchecked: the right code registers nothing and is not used up.
    let next = code_at(30);
    let answer = register(&app, &portal, EMAIL, &next, "203.0.113.101").await;
    retry_after(&answer);
    assert_eq!(devices_of(&app, &portal, EMAIL).await, 1);

    // The sign-in never heard of any of it: no failures, no back-off, no lock.
    let email = Email::parse(EMAIL).expect("email");
    let enrollment = app
        .store
        .enrollment(portal.client_id, &email)
        .await
        .expect("store")
        .expect("enrolled");
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
    let token = app.session_token(&portal, john).await.body["data"]["session_token"]
        .as_str()
        .expect("token")
        .to_owned();
    app.store
        .attempt(token_id(&token), now(), &token, |_, _| {
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
    let wait = retry_after(&answer);
    assert!(
        (device_registration::ADDRESS.window_secs - 60..=device_registration::ADDRESS.window_secs)
            .contains(&wait),
        "until the hour's window ends: {wait}"
    );
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
