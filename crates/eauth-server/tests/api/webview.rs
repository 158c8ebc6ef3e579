//! The sign-in page over HTTP, as a browser without JavaScript uses it: links, forms, cookies,
//! redirects, and what the portal's backend is told. (Real-browser flows are in `e2e/`.)

use std::time::Duration;

use eauth_core::{Algorithm, SessionStatus, TotpParams, TotpSecret};
use eauth_server::admin::ApplicationInput;
use eauth_store::testing::Backend;
use reqwest::StatusCode;

use crate::{
    backend_tests,
    helpers::{Page, SECRET, TestApp, TestApplication, spawn_app_with, token_id},
    receiver::Receiver,
};

backend_tests!(
    a_right_code_redirects_with_token_and_state_after_the_backend_was_told,
    bad_links_get_an_error_page_and_never_a_redirect,
    wrong_codes_count_down_and_the_fifth_rejects_the_session,
    deny_rejects_the_session_and_tells_the_backend,
    posts_without_this_browsers_form_token_change_nothing,
    a_code_accepted_once_is_refused_in_another_session_on_another_server,
    a_finished_session_cannot_be_approved_again,
    a_popup_posts_only_to_the_portals_origin,
    repeated_failures_across_sessions_are_throttled,
    a_receiver_that_is_down_gets_the_callback_once_it_is_back,
    a_deactivated_applications_pending_sign_in_cannot_be_approved,
);

pub const PORTAL: &str = "https://portal.example.com/callback";
pub const EMAIL: &str = "jane@example.com";

/// A browser: cookies kept, redirects not followed (the tests look at them).
pub struct Browser {
    pub client: reqwest::Client,
    pub base_url: String,
}

impl Page {
    /// The code form's fields, as the browser would post them.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split("<input type=\"hidden\" ")
            .skip(1)
            .filter_map(|tag| {
                let name = tag.split("name=\"").nth(1)?.split('"').next()?;
                let value = tag.split("value=\"").nth(1)?.split('"').next()?;
                Some((
                    name.to_owned(),
                    value
                        .replace("&#34;", "\"")
                        .replace("&#38;", "&")
                        .replace("&amp;", "&"),
                ))
            })
            .collect()
    }

    pub fn has_code_form(&self) -> bool {
        self.body.contains("name=\"code\"")
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: app.browser_client(),
            base_url: app.base_url.clone(),
        }
    }

    pub async fn open(&self, query: &[(&str, &str)]) -> Page {
        let url =
            url::Url::parse_with_params(&format!("{}/start-authentication", self.base_url), query)
                .expect("url");
        let response = self.client.get(url).send().await.expect("request");
        Page::read(response).await
    }

    pub async fn post(&self, form: &[(String, String)], action: &str, code: &str) -> Page {
        let mut fields = form.to_vec();
        fields.push(("action".into(), action.into()));
        fields.push(("code".into(), code.into()));
        let response = self
            .client
            .post(format!("{}/start-authentication", self.base_url))
            .form(&fields)
            .send()
            .await
            .expect("request");
        Page::read(response).await
    }
}

pub fn code_at(offset_secs: i64) -> String {
    let params = TotpParams::new(Algorithm::Sha1, 6, 30).expect("params");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at = now.checked_add_signed(offset_secs).expect("time");
    TotpSecret::parse(SECRET)
        .expect("secret")
        .code_at(params, at)
}

/// A code that cannot be right now: the current one plus one, wrapped.
pub fn wrong_code() -> String {
    let right: u32 = code_at(0).parse().expect("digits");
    format!("{:06}", (right + 500_000) % 1_000_000)
}

/// An application whose callbacks go to a fresh receiver, with one enrolled user.
pub async fn portal(app: &TestApp) -> (TestApplication, Receiver) {
    let receiver = Receiver::start().await;
    let portal = app
        .register(ApplicationInput {
            name: "Portal".into(),
            ips: vec!["127.0.0.1".into()],
            callback_url: receiver.url.clone(),
            redirect_uris: vec![PORTAL.into(), "http://localhost:3000/popup".into()],
            owner: None,
        })
        .await;
    assert_eq!(app.enable(&portal, EMAIL).await.code(), "SUCCESS");
    (portal, receiver)
}

pub async fn session_token(app: &TestApp, portal: &TestApplication) -> String {
    app.issued_token(portal, EMAIL).await
}

pub async fn status_of(app: &TestApp, token: &str) -> SessionStatus {
    let id = token_id(token);
    app.store
        .session(id)
        .await
        .expect("store")
        .expect("session")
        .status
}

pub fn redirect_query(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("signin_method", "redirect".into()),
        ("session_token", token.to_owned()),
        ("redirect_uri", PORTAL.into()),
        ("state", "s-123".into()),
    ]
}

pub async fn open_redirect(browser: &Browser, token: &str) -> Page {
    let query = redirect_query(token);
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.open(&pairs).await
}

async fn a_right_code_redirects_with_token_and_state_after_the_backend_was_told(app: TestApp) {
    let (portal, mut receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);

    let page = open_redirect(&browser, &token).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Portal") && page.body.contains("j•••@example.com"));
    assert!(
        page.body.contains(r#"autocomplete="one-time-code""#)
            && page.body.contains(r#"<label for="code">"#)
    );
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");

    let done = browser.post(&page.form(), "verify", &code_at(0)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let location = url::Url::parse(done.location().expect("redirect")).expect("url");
    assert_eq!(location.as_str().split('?').next(), Some(PORTAL));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("session_token"), Some(&token));
    assert_eq!(query.get("state").map(String::as_str), Some("s-123"));

    // The backend heard first: the callback arrived before the browser was sent on.
    let call = receiver
        .already_received()
        .expect("callback delivered before the redirect");
    assert_eq!(
        (call.result(), call.session_token()),
        ("true", token.as_str())
    );
    assert!(call.is_signed_with(portal.callback_secret.as_deref().expect("secret")));
    assert!(!call.is_signed_with("ecs_some_other_secret"));
    assert_eq!(status_of(&app, &token).await, SessionStatus::Approved);
}

async fn bad_links_get_an_error_page_and_never_a_redirect(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    // A token signed with another key, for this very application.
    let (forged, _) =
        eauth_core::SessionKeyring::new(eauth_core::SessionKey::generate(), app.base_url.clone())
            .issue(
                uuid::Uuid::new_v4(),
                &eauth_core::Email::parse(EMAIL).expect("email"),
                portal.client_id,
                1_900_000_000,
                120,
            );
    let long_state = "s".repeat(600);
    type Query<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Query, &str)> = vec![
        (
            "no method",
            vec![("session_token", &token), ("redirect_uri", PORTAL)],
            "no signin_method",
        ),
        (
            "unknown method",
            vec![
                ("signin_method", "iframe"),
                ("session_token", &token),
                ("redirect_uri", PORTAL),
            ],
            "must be",
        ),
        (
            "no token",
            vec![("signin_method", "redirect"), ("redirect_uri", PORTAL)],
            "no session_token",
        ),
        (
            "garbage token",
            vec![
                ("signin_method", "redirect"),
                ("session_token", "abc.def.ghi"),
                ("redirect_uri", PORTAL),
            ],
            "not one this service issued",
        ),
        (
            "forged token",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &forged),
                ("redirect_uri", PORTAL),
            ],
            "not one this service issued",
        ),
        (
            "no redirect_uri",
            vec![("signin_method", "redirect"), ("session_token", &token)],
            "no redirect_uri",
        ),
        (
            "unregistered host",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &token),
                ("redirect_uri", "https://evil.example/callback"),
            ],
            "not registered",
        ),
        (
            "longer path",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &token),
                ("redirect_uri", "https://portal.example.com/callback/x"),
            ],
            "not registered",
        ),
        (
            "other port",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &token),
                ("redirect_uri", "https://portal.example.com:8443/callback"),
            ],
            "not registered",
        ),
        (
            "other scheme",
            vec![
                ("signin_method", "popup"),
                ("session_token", &token),
                ("redirect_uri", "http://portal.example.com/callback"),
            ],
            "not registered",
        ),
        (
            "javascript url",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &token),
                ("redirect_uri", "javascript:alert(1)"),
            ],
            "not registered",
        ),
        (
            "long state",
            vec![
                ("signin_method", "redirect"),
                ("session_token", &token),
                ("redirect_uri", PORTAL),
                ("state", &long_state),
            ],
            "state is longer",
        ),
    ];
    let browser = Browser::new(&app);
    for (case, query, says) in cases {
        let page = browser.open(&query).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{case}");
        assert!(page.location().is_none(), "{case}: never a redirect");
        assert!(page.body.contains(says), "{case}: {}", page.body);
        assert!(!page.has_code_form(), "{case}");
        assert!(
            !page.body.contains("evil.example"),
            "{case}: the bad address is not linked"
        );
        assert!(
            page.headers["content-security-policy"]
                .to_str()
                .expect("csp")
                .contains("form-action 'self';"),
            "{case}"
        );
    }
    assert_eq!(
        status_of(&app, &token).await,
        SessionStatus::Pending,
        "bad links change nothing"
    );
}

async fn wrong_codes_count_down_and_the_fifth_rejects_the_session(app: TestApp) {
    let (portal, mut receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    for left in [4, 3, 2, 1] {
        let page = browser.post(&form, "verify", &wrong_code()).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let plural = if left == 1 { "attempt" } else { "attempts" };
        assert!(
            page.body
                .contains(&format!("That code is not correct. {left} {plural} left.")),
            "{}",
            page.body
        );
    }
    let page = browser.post(&form, "verify", &wrong_code()).await;
    assert!(
        page.body.contains("You don&#39;t have access")
            || page.body.contains("You don't have access"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("{PORTAL}?error=REJECT&#38;state=s-123")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("session_token="),
        "no token on the way back after a failure"
    );
    assert_eq!(status_of(&app, &token).await, SessionStatus::Rejected);

    let call = receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(
        (call.result(), call.session_token()),
        ("false", token.as_str())
    );
    assert!(call.is_signed_with(portal.callback_secret.as_deref().expect("secret")));

    // Even the right code cannot revive it.
    let page = browser.post(&form, "verify", &code_at(0)).await;
    assert!(page.location().is_none() && !page.has_code_form());
    assert_eq!(status_of(&app, &token).await, SessionStatus::Rejected);
}

async fn deny_rejects_the_session_and_tells_the_backend(app: TestApp) {
    let (portal, mut receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    let page = browser.post(&form, "deny", "").await;
    assert!(page.body.contains("Sign-in denied"), "{}", page.body);
    assert!(page.body.contains("error=REJECT"));
    assert_eq!(status_of(&app, &token).await, SessionStatus::Rejected);
    let call = receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(call.result(), "false");
}

async fn posts_without_this_browsers_form_token_change_nothing(app: TestApp) {
    let (portal, mut receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let victim = Browser::new(&app);
    let form = open_redirect(&victim, &token).await.form();

    // Another browser (no cookie), with the victim's whole form, tries to deny.
    let attacker = Browser::new(&app);
    let page = attacker.post(&form, "deny", "").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // The right browser with a tampered token.
    let tampered: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            if k == "csrf" {
                (k.clone(), "0".repeat(64))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(
        victim.post(&tampered, "verify", &code_at(0)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of(&app, &token).await, SessionStatus::Pending);
    assert!(receiver.already_received().is_none());
    // The genuine form still works.
    assert_eq!(
        victim.post(&form, "verify", &code_at(0)).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn a_code_accepted_once_is_refused_in_another_session_on_another_server(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let code = code_at(0);
    let first = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &first).await.form();
    assert_eq!(
        browser.post(&form, "verify", &code).await.status,
        StatusCode::SEE_OTHER
    );

    // The same code, in a new session, through another process on the same database.
    let (_twin, twin_url) = app.spawn_twin().await;
    let second = session_token(&app, &portal).await;
    let elsewhere = Browser {
        base_url: twin_url,
        ..Browser::new(&app)
    };
    let form = open_redirect(&elsewhere, &second).await.form();
    let page = elsewhere.post(&form, "verify", &code).await;
    assert!(
        page.body.contains("That code was already used"),
        "{}",
        page.body
    );
    assert_eq!(status_of(&app, &second).await, SessionStatus::Pending);
    // A later step is still welcome.
    assert_eq!(
        elsewhere.post(&form, "verify", &code_at(30)).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn a_finished_session_cannot_be_approved_again(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    assert_eq!(
        browser.post(&form, "verify", &code_at(0)).await.status,
        StatusCode::SEE_OTHER
    );

    let reopened = open_redirect(&browser, &token).await;
    assert!(!reopened.has_code_form() && reopened.location().is_none());
    assert!(reopened.body.contains("already completed"));
    let again = browser.post(&form, "verify", &code_at(30)).await;
    assert!(
        again.location().is_none(),
        "no second redirect with a token"
    );

    let denied = session_token(&app, &portal).await;
    let form = open_redirect(&browser, &denied).await.form();
    browser.post(&form, "deny", "").await;
    let page = browser.post(&form, "verify", &code_at(30)).await;
    assert!(page.location().is_none() && !page.has_code_form());
    assert_eq!(status_of(&app, &denied).await, SessionStatus::Rejected);
}

async fn a_popup_posts_only_to_the_portals_origin(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let query = [
        ("signin_method", "popup"),
        ("session_token", token.as_str()),
        ("redirect_uri", "http://localhost:3000/popup"),
        ("state", "st"),
    ];
    let form = browser.open(&query).await.form();
    let page = browser.post(&form, "verify", &code_at(0)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(r#"data-target-origin="http://localhost:3000""#),
        "{}",
        page.body
    );
    let message =
        format!("{{&#34;session_token&#34;:&#34;{token}&#34;,&#34;state&#34;:&#34;st&#34;}}");
    assert!(page.body.contains(&message), "{}", page.body);
    assert!(!page.body.contains("\"*\"") && !page.body.contains("&#34;*&#34;"));

    // Without redirect_uri, an application with two origins cannot say where to post.
    let other = session_token(&app, &portal).await;
    let page = browser
        .open(&[
            ("signin_method", "popup"),
            ("session_token", other.as_str()),
        ])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("redirect_uri is required"));
}

async fn repeated_failures_across_sessions_are_throttled(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let browser = Browser::new(&app);
    // Two sessions of five wrong codes, and two more: twelve failures in a row.
    for wrong in [5, 5, 2] {
        let token = session_token(&app, &portal).await;
        let form = open_redirect(&browser, &token).await.form();
        for _ in 0..wrong {
            browser.post(&form, "verify", &wrong_code()).await;
        }
        if wrong == 2 {
            // The twelfth failure makes the next attempt wait 4 s, whatever the code.
            let page = browser.post(&form, "verify", &code_at(0)).await;
            assert!(
                page.body
                    .contains("Too many wrong codes for this account. Try again in"),
                "{}",
                page.body
            );
            assert_eq!(status_of(&app, &token).await, SessionStatus::Pending);
        }
    }
}

async fn a_receiver_that_is_down_gets_the_callback_once_it_is_back(app: TestApp) {
    let (portal, mut receiver) = portal(&app).await;
    receiver.answer_with(503);
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    browser.post(&form, "deny", "").await;
    let refused = receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(refused.session_token(), token);
    receiver.answer_with(200);
    // The first retry comes 5 s later.
    let delivered = receiver.next_within(Duration::from_secs(15)).await;
    assert_eq!(
        (delivered.result(), delivered.session_token()),
        ("false", token.as_str())
    );
    let callback = app
        .callback_once(&token, |c| {
            c.status == eauth_store::CallbackStatus::Delivered
        })
        .await;
    assert_eq!(callback.attempts, 2);
}

#[tokio::test]
async fn by_default_no_callback_goes_to_this_machine_and_the_sign_in_goes_on() {
    // The settings' default, not the fixture's: callbacks to public addresses only.
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.private_callbacks = eauth_server::Settings::defaults().private_callbacks;
    })
    .await
    .expect("sqlite");
    let mut receiver = Receiver::start().await;
    let input = ApplicationInput {
        name: "Portal".into(),
        ips: vec!["127.0.0.1".into()],
        callback_url: receiver.url.clone(),
        redirect_uris: vec![PORTAL.into()],
        owner: None,
    };
    // Refused when registered: an address on this machine is plainly not public.
    let admin = app.admin().await;
    let refused = admin.create_application(&input).await;
    admin.close().await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|error| error.to_string().contains("private_callbacks")),
        "{:?}",
        refused.map(|_| ())
    );
    // Registered while private networks were allowed; the service now runs without them.
    let allowing = eauth_server::Settings {
        private_callbacks: true,
        ..app.settings.clone()
    };
    let admin = eauth_server::admin::Admin::open(&allowing)
        .await
        .expect("admin");
    let portal: TestApplication = admin
        .create_application(&input)
        .await
        .expect("registered")
        .into();
    admin.close().await;
    assert_eq!(app.enable(&portal, EMAIL).await.code(), "SUCCESS");
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    let done = browser.post(&form, "verify", &code_at(0)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, &token).await, SessionStatus::Approved);
    // The refusal is the first attempt, recorded just after the browser was sent on.
    let callback = app.callback_once(&token, |c| c.last_error.is_some()).await;
    assert_eq!(callback.status, eauth_store::CallbackStatus::Pending);
    let error = callback.last_error.expect("an error");
    assert!(
        error.contains("not a public address") && error.contains("private_callbacks"),
        "{error}"
    );
    assert!(
        receiver.already_received().is_none(),
        "the receiver on loopback was called"
    );
}

#[tokio::test]
async fn an_unanswered_session_times_out_and_the_backend_is_told() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.session_ttl_secs = 2)
        .await
        .expect("sqlite");
    let (portal, mut receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    // Nobody looks at the page: the sweeper finishes it.
    let call = receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(
        (call.result(), call.session_token()),
        ("false", token.as_str())
    );
    assert_eq!(status_of(&app, &token).await, SessionStatus::TimedOut);
    let page = browser.post(&form, "verify", &code_at(0)).await;
    assert!(
        page.body.contains("This sign-in has expired") && page.body.contains("error=TIMEOUT"),
        "{}",
        page.body
    );
}

async fn a_deactivated_applications_pending_sign_in_cannot_be_approved(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    let admin = app.admin().await;
    admin
        .set_active(&portal.client_id.to_string(), false)
        .await
        .expect("deactivate");
    admin.close().await;

    let page = browser.post(&form, "verify", &code_at(0)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.location().is_none() && page.body.contains("not active"),
        "{}",
        page.body
    );
    assert!(!open_redirect(&browser, &token).await.has_code_form());
    assert_eq!(status_of(&app, &token).await, SessionStatus::Pending);
}
