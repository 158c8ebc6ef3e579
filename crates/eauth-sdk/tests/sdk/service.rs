//! The SDK against the real service: enrollment, sessions, and every error code a client
//! can provoke.

use eauth_sdk::{Client, Config, Error, SignIn, TotpSecret};

use crate::support::{assert_not_connected, enroll, spawn_service};

fn secret() -> TotpSecret {
    TotpSecret::parse("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").expect("secret")
}

#[tokio::test]
async fn an_enrollment_confirmed_with_its_code_enables_sign_in_until_disabled() {
    let service = spawn_service().await;
    let portal = service.register().await;
    let client = service.client(&portal);

    let enrollment = enroll(&client, "Jane+2FA@Example.com").await;
    assert_eq!(enrollment.email(), "jane+2fa@example.com");
    assert!(
        service
            .is_enrolled(portal.client_id, "jane+2fa@example.com")
            .await
    );

    let token = client
        .create_session("jane+2fa@example.com")
        .await
        .expect("session");
    assert_eq!(token.as_str().split('.').count(), 3, "a JWT");
    assert_eq!(service.session_count(portal.client_id).await, 1);
    let url = client.authentication_url(
        &token,
        &SignIn::Redirect {
            redirect_uri: "https://portal.example.com/callback".into(),
        },
    );
    assert!(
        url.as_str()
            .starts_with(&format!("{}/start-authentication?", service.base_url))
    );

    client
        .disable_2fa("JANE+2FA@example.com")
        .await
        .expect("disabled");
    assert!(
        !service
            .is_enrolled(portal.client_id, "jane+2fa@example.com")
            .await
    );
    let error = client
        .create_session("jane+2fa@example.com")
        .await
        .expect_err("no longer enrolled");
    assert!(matches!(error, Error::MfaNotEnabled), "{error:?}");
    // Disabling again is still a success: the call is idempotent.
    client
        .disable_2fa("jane+2fa@example.com")
        .await
        .expect("idempotent");
}

#[tokio::test]
async fn a_user_without_2fa_gets_mfa_not_enabled_and_no_session() {
    let service = spawn_service().await;
    let portal = service.register().await;
    let error = service
        .client(&portal)
        .create_session("nobody@example.com")
        .await
        .expect_err("not enrolled");
    assert!(matches!(error, Error::MfaNotEnabled), "{error:?}");
    assert_eq!(service.session_count(portal.client_id).await, 0);
}

#[tokio::test]
async fn a_wrong_key_or_an_unknown_client_id_gets_invalid_api_key() {
    let service = spawn_service().await;
    let portal = service.register().await;
    let other = service.register().await;

    let wrong_key = service.client_with(Config {
        api_key: "eak_wrongwrongwrongwrongwrongwrongwrong".into(),
        ..service.config(&portal)
    });
    let another_applications_key = service.client_with(Config {
        api_key: other.api_key.expose().into(),
        ..service.config(&portal)
    });
    let unknown_client = service.client_with(Config {
        client_id: "00000000-0000-4000-8000-000000000000".into(),
        ..service.config(&portal)
    });
    for client in [wrong_key, another_applications_key, unknown_client] {
        let error = client
            .enable_2fa("jane@example.com", &secret())
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::InvalidApiKey), "{error:?}");
        let error = client
            .create_session("jane@example.com")
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::InvalidApiKey), "{error:?}");
    }
    assert!(
        !service
            .is_enrolled(portal.client_id, "jane@example.com")
            .await
    );
}

#[tokio::test]
async fn an_inactive_application_gets_inactive() {
    let service = spawn_service().await;
    let portal = service.register().await;
    let client = service.client(&portal);
    client
        .enable_2fa("jane@example.com", &secret())
        .await
        .expect("enabled while active");
    let admin = service.admin().await;
    admin
        .set_active(&portal.client_id.to_string(), false)
        .await
        .expect("deactivate");
    admin.close().await;

    let error = client
        .create_session("jane@example.com")
        .await
        .expect_err("inactive");
    assert!(matches!(error, Error::Inactive), "{error:?}");
    let error = client
        .disable_2fa("jane@example.com")
        .await
        .expect_err("inactive");
    assert!(matches!(error, Error::Inactive), "{error:?}");
}

#[tokio::test]
async fn invalid_emails_get_invalid_request_with_the_services_reason() {
    let service = spawn_service().await;
    let client = service.client(&service.register().await);

    let error = client
        .create_session("not an email")
        .await
        .expect_err("invalid");
    match &error {
        Error::InvalidRequest { message } => {
            assert_eq!(
                message,
                "get session token failed: email is not a valid address"
            );
        }
        other => panic!("{other:?}"),
    }
    let error = client.enable_2fa("", &secret()).await.expect_err("invalid");
    match &error {
        Error::InvalidRequest { message } => assert_eq!(message, "toggle failed: email is empty"),
        other => panic!("{other:?}"),
    }
    // The service's reason reaches the caller's error message.
    assert!(error.to_string().contains("email is empty"), "{error}");
}

#[tokio::test]
async fn a_server_outside_the_whitelist_gets_ip_not_allowed_naming_its_address() {
    let service = spawn_service().await;
    let portal = service.register_for(&["203.0.113.0/24"]).await;
    let client = service.client(&portal);
    let error = client
        .enable_2fa("jane@example.com", &secret())
        .await
        .expect_err("not whitelisted");
    match &error {
        Error::IpNotAllowed { message } => assert!(message.contains("127.0.0.1"), "{message}"),
        other => panic!("{other:?}"),
    }
    let error = client
        .create_session("jane@example.com")
        .await
        .expect_err("not whitelisted");
    assert!(matches!(error, Error::IpNotAllowed { .. }), "{error:?}");
}

#[tokio::test]
async fn a_wrong_base_path_gets_not_found() {
    let service = spawn_service().await;
    let portal = service.register().await;
    let client = service.client_with(Config {
        base_url: format!("{}/authen-api/misplaced", service.base_url),
        ..service.config(&portal)
    });
    let error = client
        .disable_2fa("jane@example.com")
        .await
        .expect_err("no such endpoint");
    assert!(matches!(error, Error::NotFound), "{error:?}");
}

#[tokio::test]
async fn the_services_certificate_must_be_trusted() {
    let service = spawn_service().await;
    let portal = service.register().await;
    // Without the self-signed certificate, only the system's roots are trusted.
    let client = Client::new(Config {
        root_certificates_pem: Vec::new(),
        ..service.config(&portal)
    })
    .expect("client");
    let error = client
        .create_session("jane@example.com")
        .await
        .expect_err("untrusted certificate");
    assert_not_connected(&error);
}
