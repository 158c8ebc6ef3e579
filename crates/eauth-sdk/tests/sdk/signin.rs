//! The whole guide end to end against the real service: enroll with the SDK, create a
//! session, sign in on the service's page as a browser would, receive the signed callback and
//! verify it with the SDK, and ask `session-result`.

use std::time::SystemTime;

use eauth_sdk::{
    CallbackError, Client, Config, Enrollment, Error, SessionStatus, SessionToken, SignIn,
};
use eauth_server::admin::Credentials;

use crate::{
    receiver::CallbackReceiver,
    support::{LOOPBACK, REDIRECT_URI, TestService, enroll, spawn_service},
};

/// A portal with its callback endpoint and an enrolled user.
struct Portal {
    service: TestService,
    receiver: CallbackReceiver,
    credentials: Credentials,
    client: Client,
    enrollment: Enrollment,
}

/// Registers a portal whose callback URL carries `own_query`, and enrolls jane.
async fn portal_with_enrolled_user(own_query: &str) -> Portal {
    let service = spawn_service().await;
    let receiver = CallbackReceiver::start().await;
    let callback_url = receiver.url(own_query);
    let credentials = service.register_with(LOOPBACK, &callback_url).await;
    let client = service.client_with(Config {
        callback_url: Some(callback_url),
        ..service.config(&credentials)
    });
    let enrollment = enroll(&client, "jane@example.com").await;
    Portal {
        service,
        receiver,
        credentials,
        client,
        enrollment,
    }
}

/// What the user does on the sign-in page: open it, then submit `fields` with the form's
/// anti-forgery token. Returns the answer's status and `Location`.
async fn sign_in_on_the_page(
    portal: &Portal,
    token: &SessionToken,
    fields: &[(&str, &str)],
) -> (u16, Option<String>) {
    let certificate = reqwest::Certificate::from_pem(&portal.service.certificate_pem).expect("PEM");
    let browser = reqwest::Client::builder()
        .add_root_certificate(certificate)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    let url = portal.client.authentication_url(
        token,
        &SignIn::Redirect {
            redirect_uri: REDIRECT_URI.into(),
        },
    );
    let page = browser
        .get(url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("HTML");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field in {page}"));
    let mut form = vec![
        ("signin_method", "redirect"),
        ("session_token", token.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("csrf", csrf),
    ];
    form.extend_from_slice(fields);
    let answer = browser
        .post(format!("{}/start-authentication", portal.service.base_url))
        .form(&form)
        .send()
        .await
        .expect("submit");
    let location = answer
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (answer.status().as_u16(), location)
}

#[tokio::test]
async fn an_approved_sign_in_reaches_the_portal_as_a_callback_the_sdk_verifies() {
    let portal = portal_with_enrolled_user("").await;
    let token = portal
        .client
        .create_session("jane@example.com")
        .await
        .expect("session");
    let pending = portal.client.session_result(&token).await.expect("result");
    assert_eq!(pending.status, SessionStatus::Pending);
    assert_eq!(pending.finished_at, None);

    let code = portal.enrollment.code_at(SystemTime::now());
    let (status, location) =
        sign_in_on_the_page(&portal, &token, &[("code", &code), ("action", "verify")]).await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        Some(format!("{REDIRECT_URI}?session_token={}", token.as_str()))
    );

    let query = portal.receiver.first().await;
    let callback = portal
        .client
        .verify_callback(&query, SystemTime::now())
        .expect("the service's signature verifies");
    assert!(callback.approved);
    assert_eq!(callback.session_token, token);

    let result = portal.client.session_result(&token).await.expect("result");
    assert!(result.is_approved());
    assert_eq!(result.email, "jane@example.com");
    assert!(
        result
            .finished_at
            .is_some_and(|at| at.abs_diff(callback.timestamp) <= 5)
    );

    // The same callback, tampered with, is refused.
    let flipped = query.replace("result=true", "result=false");
    assert_eq!(
        portal.client.verify_callback(&flipped, SystemTime::now()),
        Err(CallbackError::BadSignature)
    );
}

#[tokio::test]
async fn a_denied_sign_in_is_a_verified_rejection_with_the_registered_urls_own_query() {
    let portal = portal_with_enrolled_user("tenant=7").await;
    let token = portal
        .client
        .create_session("jane@example.com")
        .await
        .expect("session");
    let (status, _) = sign_in_on_the_page(&portal, &token, &[("action", "deny")]).await;
    assert_eq!(status, 200, "the page says the sign-in was denied");

    let query = portal.receiver.first().await;
    assert!(query.starts_with("tenant=7&"), "{query}");
    let callback = portal
        .client
        .verify_callback(&query, SystemTime::now())
        .expect("verifies");
    assert!(!callback.approved);
    assert_eq!(callback.session_token, token);

    // A verifier that was not told about the registered query refuses the callback.
    let unaware = portal.service.client(&portal.credentials);
    assert_eq!(
        unaware.verify_callback(&query, SystemTime::now()),
        Err(CallbackError::Unexpected("tenant".into()))
    );

    let result = portal.client.session_result(&token).await.expect("result");
    assert_eq!(result.status, SessionStatus::Rejected);
    assert!(!result.is_approved());
}

#[tokio::test]
async fn session_result_refuses_tokens_that_are_not_the_applications_sessions() {
    let portal = portal_with_enrolled_user("").await;
    let other = portal.service.register().await;
    let other_client = portal.service.client(&other);
    let token = portal
        .client
        .create_session("jane@example.com")
        .await
        .expect("session");
    let garbage = SessionToken::from("not.a.token".to_owned());
    for (client, token) in [(&portal.client, &garbage), (&other_client, &token)] {
        let error = client.session_result(token).await.expect_err("refused");
        match &error {
            Error::InvalidRequest { message } => assert_eq!(
                message,
                "get session result failed: session_token is not a session of this application"
            ),
            other => panic!("{other:?}"),
        }
    }
}
