//! The Domain Console over HTTP, as a browser without JavaScript uses it: forms, cookies and
//! redirects, and what the console's actions do to the API. (In a real browser, with
//! screenshots of every page: `e2e/tests/console.spec.js` and `console-pages.spec.js`.)

use std::time::Duration;

use eauth_core::{
    DeviceId, DeviceKey, DeviceName, Email,
    device_registration::{self, ThrottleKeys},
    signin::Verdict,
};
use eauth_store::CallbackStatus;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    backend_tests,
    helpers::{Page, TestApp, TestApplication, token_id},
    push::App,
    receiver::Receiver,
};

backend_tests!(
    // As behind a proxy on the same host: requests that name no client come from 127.0.0.1.
    with |settings| settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    an_account_registers_signs_out_and_its_old_cookie_stops_working,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    failed_sign_ins_are_throttled_per_account_and_per_address,
    registration_checks_the_email_and_the_password,
    registrations_from_one_address_are_throttled_whether_the_email_is_free_or_taken,
    an_application_created_in_the_console_works_with_the_key_it_shows,
    a_rotated_api_key_replaces_the_old_one_at_once,
    a_rotated_callback_secret_signs_the_next_callback,
    a_deactivated_application_is_answered_inactive_until_activated,
    another_accounts_application_is_not_found_and_nothing_changes,
    forms_without_this_sessions_token_are_refused_and_change_nothing,
    next_only_ever_leads_to_a_console_page,
    invalid_fields_are_shown_next_to_each_field_and_nothing_is_saved,
    users_are_listed_searched_paged_and_unlocked,
    a_users_devices_are_listed_and_one_is_removed_after_a_confirmation,
    a_device_of_another_application_cannot_be_removed_through_ones_own,
    sign_ins_are_listed_and_filtered,
    a_failed_callback_can_be_sent_again,
    deleting_needs_the_name_and_removes_everything,
    the_audit_log_says_who_did_what_from_where,
    the_overview_draws_the_outcomes_as_an_svg,
    the_integration_page_is_filled_in_for_the_application,
);

const PASSWORD: &str = "correct horse battery";
const JANE: &str = "jane@example.com";
const JOHN: &str = "john@example.com";

/// A browser: cookies kept, redirects not followed (the tests look at them).
struct Browser {
    client: reqwest::Client,
    base_url: String,
}

/// Askama's escapes, undone.
fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

impl Page {
    /// The value of the first `<input name="NAME" value="...">`.
    fn input(&self, name: &str) -> Option<String> {
        let tag = self.body.split(&format!("name=\"{name}\"")).nth(1)?;
        let tag = tag.split('>').next()?;
        let value = tag.split("value=\"").nth(1)?.split('"').next()?;
        Some(unescape(value))
    }

    /// The anti-forgery token of the page's forms.
    fn csrf(&self) -> String {
        self.input("csrf").expect("a form with a csrf field")
    }

    /// The text of `<code id="ID">`.
    fn code(&self, id: &str) -> Option<String> {
        let text = self.body.split(&format!("<code id=\"{id}\">")).nth(1)?;
        Some(unescape(text.split("</code>").next()?))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The `Set-Cookie` of the console's session cookie, if the page sets (or removes) it.
    fn session_cookie(&self) -> Option<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("__Host-eauth-console="))
    }

    fn says(&self, text: &str) -> bool {
        self.body.contains(text) || unescape(&self.body).contains(text)
    }
}

/// What the console showed once, after creating an application.
struct Created {
    client_id: String,
    api_key: String,
    callback_secret: String,
}

impl Created {
    fn credentials(&self) -> TestApplication {
        TestApplication {
            client_id: eauth_core::ClientId::parse(&self.client_id).expect("client id"),
            api_key: self.api_key.clone(),
            callback_secret: Some(self.callback_secret.clone()),
        }
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: app.browser_client(),
            base_url: app.base_url.clone(),
        }
    }

    /// A browser at `source`, behind the test's trusted proxy.
    fn at(app: &TestApp, source: &str) -> Self {
        Self {
            client: app.browser_client_from(source),
            base_url: app.base_url.clone(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("request");
        Page::read(response).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .form(fields)
            .send()
            .await
            .expect("request");
        Page::read(response).await
    }

    /// Posts `fields` with the token of the form on `form_page`.
    async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(form_page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    async fn register(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/console/register",
            "/console/register",
            &[("email", email), ("password", password)],
        )
        .await
    }

    async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/console/sign-in",
            "/console/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs Jane in with the sign-in form on `form`, asking to go on to `next`.
    async fn sign_in_then(&self, form: &Page, next: &str) -> Page {
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", JANE),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await
    }

    /// A browser with a fresh account, signed in.
    async fn signed_up(app: &TestApp, email: &str) -> Self {
        let browser = Self::new(app);
        let page = browser.register(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }

    async fn create_app_with(&self, fields: &[(&str, &str)]) -> Page {
        self.submit("/console/apps/new", "/console/apps/new", fields)
            .await
    }

    /// Creates an application that loopback may call, and reads its credentials off the page.
    async fn create_app(&self, name: &str, callback_url: &str) -> Created {
        let page = self
            .create_app_with(&[
                ("name", name),
                ("ips", "127.0.0.1\n::1"),
                ("callback_url", callback_url),
                ("redirect_uris", "https://portal.example.com/callback"),
            ])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        Created {
            client_id: page.code("client-id").expect("client id shown"),
            api_key: page.code("api-key").expect("API key shown"),
            callback_secret: page.code("callback-secret").expect("secret shown"),
        }
    }

    /// A browser with a fresh account, signed in, that created an application named "Portal"
    /// which loopback may call.
    async fn with_portal(app: &TestApp, email: &str) -> (Self, Created) {
        let browser = Self::signed_up(app, email).await;
        let created = browser
            .create_app("Portal", "https://portal.example.com/eauth")
            .await;
        (browser, created)
    }

    /// Posts `fields` to one of the application's actions.
    async fn act(&self, created: &Created, action: &str, fields: &[(&str, &str)]) -> Page {
        self.post(
            &format!("/console/apps/{}/{action}", created.client_id),
            fields,
        )
        .await
    }

    async fn app_page(&self, created: &Created, tab: &str) -> Page {
        let path = format!("/console/apps/{}", created.client_id);
        if tab.is_empty() {
            self.get(&path).await
        } else {
            self.get(&format!("{path}/{tab}")).await
        }
    }
}

/// The application as the database holds it.
async fn stored(app: &TestApp, client_id: eauth_core::ClientId) -> eauth_store::Application {
    app.store
        .application(client_id)
        .await
        .expect("store")
        .expect("the application exists")
}

async fn session_token_code(app: &TestApp, credentials: &TestApplication) -> String {
    app.session_token(credentials, "user@example.com")
        .await
        .code()
        .to_owned()
}

/// Enrolls `email` and finishes one session of it as `status`, as the sign-in page would,
/// writing its callback; returns the session's token.
async fn finished_sign_in(
    app: &TestApp,
    credentials: &TestApplication,
    email: &str,
    verdict: Verdict,
) -> String {
    if !app.is_enrolled(credentials, email).await {
        assert_eq!(app.enable(credentials, email).await.code(), "SUCCESS");
    }
    let token = app.issued_token(credentials, email).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let now = i64::try_from(now).expect("now");
    app.store
        .attempt(token_id(&token), now, &token, 0, move |_, _| Ok(verdict))
        .await
        .expect("attempt");
    token
}

/// Whether a console account with this email exists.
async fn has_account(app: &TestApp, email: &str) -> bool {
    let email = Email::parse(email).expect("email");
    app.store.account(&email).await.expect("store").is_some()
}

/// Enrolls `email` with the application through `mfa/toggle`, as its backend does.
async fn enroll(app: &TestApp, credentials: &TestApplication, email: &str) {
    assert_eq!(
        app.enable(credentials, email).await.code(),
        "SUCCESS",
        "{email}"
    );
}

/// A device of `email` (enrolled with `credentials`'s application), written to the store as a
/// registration with a right code would write it.
async fn stored_device(
    app: &TestApp,
    credentials: &TestApplication,
    email: &str,
    name: &str,
) -> eauth_store::Device {
    let device = eauth_store::Device {
        id: DeviceId::generate(),
        client_id: credentials.client_id,
        email: Email::parse(email).expect("email"),
        public_key: DeviceKey::generate().public_key(),
        name: DeviceName::parse(name).expect("name"),
        created_at: 1_800_000_000,
    };
    let approved = device_registration::Verdict::Approved { step: 1 };
    let keys = ThrottleKeys::new(
        device.client_id,
        &device.email,
        "203.0.113.7".parse().expect("ip"),
    );
    let registered = app
        .store
        .register_device(&device, &keys, move |_, _, _| Ok(approved))
        .await
        .expect("store");
    assert_eq!(registered, approved);
    device
}

/// Whether the store still holds `device`.
async fn device_exists(app: &TestApp, device: DeviceId) -> bool {
    app.store.device(device).await.expect("store").is_some()
}

async fn an_account_registers_signs_out_and_its_old_cookie_stops_working(app: TestApp) {
    // Not signed in: the console sends the browser to sign in, and back afterwards.
    let browser = Browser::new(&app);
    let page = browser.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/console/sign-in?next=%2Fconsole"));

    let registered = browser.register(JANE, PASSWORD).await;
    assert_eq!(registered.status, StatusCode::SEE_OTHER);
    assert_eq!(registered.location(), Some("/console"));
    let cookie = registered
        .session_cookie()
        .expect("session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let token = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("name=value")
        .1
        .to_owned();
    let account = app
        .store
        .account(&Email::parse(JANE).expect("email"))
        .await
        .expect("store")
        .expect("account");
    assert!(account.password_hash.starts_with("$argon2id$"));
    assert!(!account.password_hash.contains(PASSWORD));

    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.says("No applications yet") && home.says(JANE));

    // Another client presenting the same cookie is the same session, until sign-out.
    let copy = Browser::new(&app);
    let with_cookie = |browser: &Browser| {
        browser
            .client
            .get(format!("{}/console", browser.base_url))
            .header("cookie", format!("__Host-eauth-console={token}"))
            .send()
    };
    assert_eq!(
        with_cookie(&copy).await.expect("request").status(),
        StatusCode::OK
    );

    let signed_out = browser
        .post("/console/sign-out", &[("csrf", &home.csrf())])
        .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_out.location(), Some("/console/sign-in"));
    // The cookie is removed in a form browsers accept for a __Host- cookie (they ignore the
    // removal otherwise, and keep sending the dead token).
    let removal = signed_out.session_cookie().expect("the cookie is removed");
    for attribute in ["Secure", "Path=/", "Max-Age=0"] {
        assert!(removal.contains(attribute), "{attribute} in {removal}");
    }
    assert!(!removal.contains("Domain"), "{removal}");
    assert_eq!(
        browser.get("/console").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
    // The server forgot the session: the copied cookie is dead too.
    assert_eq!(
        with_cookie(&copy).await.expect("request").status(),
        StatusCode::SEE_OTHER
    );

    let again = browser.sign_in(JANE, PASSWORD).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), Some("/console"));
    assert_eq!(browser.get("/console").await.status, StatusCode::OK);
    // Signed in, the forms send the browser on.
    assert_eq!(
        browser.get("/console/sign-in").await.location(),
        Some("/console")
    );
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(app: TestApp) {
    Browser::signed_up(&app, JANE).await;
    let browser = Browser::new(&app);
    let wrong_password = browser.sign_in(JANE, "not the password at all").await;
    let unknown_email = browser
        .sign_in("nobody@example.com", "not the password at all")
        .await;
    let malformed_email = browser.sign_in("nobody", PASSWORD).await;
    for page in [&wrong_password, &unknown_email, &malformed_email] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.says("The email or password is not correct."),
            "{}",
            page.body
        );
        assert!(page.location().is_none());
        assert_eq!(page.session_cookie(), None);
    }
    // The same page, but for the address typed into it.
    assert_eq!(
        wrong_password.body.replace(JANE, "EMAIL"),
        unknown_email.body.replace("nobody@example.com", "EMAIL")
    );
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
}

async fn failed_sign_ins_are_throttled_per_account_and_per_address(app: TestApp) {
    Browser::signed_up(&app, JANE).await;
    Browser::signed_up(&app, JOHN).await;
    let browser = Browser::new(&app);
    for _ in 0..5 {
        let page = browser.sign_in(JANE, "wrong password!").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Jane's account is throttled: even the right password is not looked at...
    let throttled = browser.sign_in(JANE, PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        throttled.says("Too many failed sign-ins"),
        "{}",
        throttled.body
    );
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
    // ...and an unknown email is throttled alike, so the throttle reveals no account.
    for _ in 0..5 {
        browser
            .sign_in("ghost@example.com", "wrong password!")
            .await;
    }
    assert_eq!(
        browser.sign_in("ghost@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // John is another account: ten failures from this address so far, below its limit.
    let john = Browser::new(&app);
    assert_eq!(
        john.sign_in(JOHN, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Ten more, over several accounts, reach the address's limit of twenty.
    for i in 0..10 {
        let page = browser
            .sign_in(&format!("guess{}@example.com", i % 3), "wrong password!")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let john_again = Browser::new(&app);
    assert_eq!(
        john_again.sign_in(JOHN, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn registration_checks_the_email_and_the_password(app: TestApp) {
    let browser = Browser::new(&app);
    let page = browser.register("not-an-email", "short").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.says("Email is not a valid address."), "{}", page.body);
    assert!(page.says("Password: use at least 12 characters."));
    assert_eq!(page.input("email").as_deref(), Some("not-an-email"));
    assert!(
        !page.body.contains("value=\"short\""),
        "passwords are never echoed"
    );

    Browser::signed_up(&app, JANE).await;
    let taken = Browser::new(&app)
        .register(" Jane@Example.com ", "another long password")
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.says("An account with this email exists already"));
    // The first password still holds.
    assert_eq!(
        Browser::new(&app).sign_in(JANE, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn registrations_from_one_address_are_throttled_whether_the_email_is_free_or_taken(
    app: TestApp,
) {
    // Malformed forms tell nothing about accounts: they are not counted.
    for _ in 0..3 {
        let page = Browser::new(&app).register("not-an-email", PASSWORD).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Ten registrations from this address in the window, free emails and a taken one alike.
    Browser::signed_up(&app, JANE).await;
    for i in 0..9 {
        let email = if i % 2 == 0 {
            format!("new{i}@example.com")
        } else {
            JANE.to_owned()
        };
        let page = Browser::new(&app).register(&email, PASSWORD).await;
        let expected = if i % 2 == 0 {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(page.status, expected, "{email}");
    }
    // The eleventh is refused before anything is looked up: a free email creates nothing, and
    // a taken one is not said to be taken.
    for email in ["late@example.com", JANE] {
        let page = Browser::new(&app).register(email, PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{email}");
        assert!(page.says("Too many registrations from this address"));
        assert!(!page.says("exists already"), "{email}");
        assert_eq!(page.session_cookie(), None, "not signed in");
    }
    assert!(!has_account(&app, "late@example.com").await);
    // Counted per address: another one registers, and this one stays refused.
    let elsewhere = Browser::at(&app, "203.0.113.9")
        .register("elsewhere@example.com", PASSWORD)
        .await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
    assert_eq!(
        Browser::new(&app)
            .register("later@example.com", PASSWORD)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Signing in is another throttle: Jane still gets in.
    assert_eq!(
        Browser::new(&app).sign_in(JANE, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn an_application_created_in_the_console_works_with_the_key_it_shows(app: TestApp) {
    let browser = Browser::signed_up(&app, JANE).await;
    let page = browser
        .create_app_with(&[
            ("name", "Jane's Portal"),
            ("ips", "127.0.0.1\n\n10.0.0.0/8\n::1\n2001:db8::/32"),
            ("callback_url", "https://portal.example.com/eauth/callback"),
            (
                "redirect_uris",
                "https://portal.example.com/callback\nhttp://localhost:3000/popup",
            ),
        ])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.says("will not be shown again"));
    assert!(page.body.contains("data-copy=\"api-key\""), "a copy button");
    let created = Created {
        client_id: page.code("client-id").expect("client id"),
        api_key: page.code("api-key").expect("key"),
        callback_secret: page.code("callback-secret").expect("secret"),
    };
    assert!(created.api_key.starts_with("eak_") && created.callback_secret.starts_with("ecs_"));

    let row = stored(&app, created.credentials().client_id).await;
    assert_eq!(row.owner, Some(Email::parse(JANE).expect("email")));
    assert_eq!(row.name.as_str(), "Jane's Portal");
    assert_eq!(row.ip_allow_list.entries().count(), 4);
    assert_eq!(row.redirect_uris.len(), 2);
    assert!(row.active);

    // The key from the page, against the API.
    let credentials = created.credentials();
    enroll(&app, &credentials, "user@example.com").await;
    assert_eq!(session_token_code(&app, &credentials).await, "SUCCESS");

    // Shown once: no other page carries it.
    for tab in ["", "keys", "settings", "integration"] {
        let page = browser.app_page(&created, tab).await;
        assert_eq!(page.status, StatusCode::OK, "{tab}");
        assert!(!page.body.contains(&created.api_key), "{tab}");
        assert!(!page.body.contains(&created.callback_secret), "{tab}");
    }
    let list = browser.get("/console").await;
    assert!(list.says("Jane's Portal") && list.body.contains(&created.client_id));
}

async fn a_rotated_api_key_replaces_the_old_one_at_once(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let old = created.credentials();
    enroll(&app, &old, "user@example.com").await;

    // Asked first; only the post rotates.
    let confirm = browser.app_page(&created, "rotate-api-key").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.says("The current key stops working at once"));
    assert_eq!(session_token_code(&app, &old).await, "SUCCESS");

    let rotated = browser
        .act(&created, "rotate-api-key", &[("csrf", &confirm.csrf())])
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.header("cache-control"), "no-store");
    let new_key = rotated.code("api-key").expect("new key shown");
    assert_ne!(new_key, old.api_key);
    assert!(rotated.code("callback-secret").is_none());

    assert_eq!(session_token_code(&app, &old).await, "INVALID_API_KEY");
    let new = TestApplication {
        api_key: new_key,
        ..created.credentials()
    };
    assert_eq!(session_token_code(&app, &new).await, "SUCCESS");
}

async fn a_rotated_callback_secret_signs_the_next_callback(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let browser = Browser::signed_up(&app, JANE).await;
    let created = browser.create_app("Portal", &receiver.url).await;
    let before = stored(&app, created.credentials().client_id)
        .await
        .sealed_callback_secret;

    let confirm = browser.app_page(&created, "rotate-callback-secret").await;
    assert!(confirm.says("Rotate the callback secret?"));
    let rotated = browser
        .act(
            &created,
            "rotate-callback-secret",
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(rotated.header("cache-control"), "no-store");
    let secret = rotated.code("callback-secret").expect("new secret");
    assert_ne!(secret, created.callback_secret);
    assert!(rotated.code("api-key").is_none());
    let after = stored(&app, created.credentials().client_id)
        .await
        .sealed_callback_secret;
    assert_ne!(before, after);
    assert!(
        !String::from_utf8_lossy(&after).contains(&secret),
        "sealed, not plain"
    );

    // The API key did not change, and the next callback is signed with the new secret.
    let token = finished_sign_in(
        &app,
        &created.credentials(),
        "user@example.com",
        Verdict::Exhausted { locked: false },
    )
    .await;
    let call = receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(call.session_token(), token);
    assert!(call.is_signed_with(&secret));
    assert!(!call.is_signed_with(&created.callback_secret));
}

async fn a_deactivated_application_is_answered_inactive_until_activated(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let credentials = created.credentials();
    enroll(&app, &credentials, "user@example.com").await;

    let keys = browser.app_page(&created, "keys").await;
    assert!(keys.says("Deactivate"));
    let path = format!("/console/apps/{}/activation", created.client_id);
    let page = browser
        .post(&path, &[("csrf", &keys.csrf()), ("active", "false")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let answer = app.session_token(&credentials, "user@example.com").await;
    assert_eq!(
        (answer.status, answer.body.clone()),
        (
            StatusCode::FORBIDDEN,
            json!({"code": "INACTIVE", "message": "client not active", "data": null})
        )
    );
    let keys = browser
        .get(page.location().expect("back to the keys page"))
        .await;
    assert!(keys.says("The application is inactive"));
    assert!(keys.says("Inactive"));

    browser
        .post(&path, &[("csrf", &keys.csrf()), ("active", "true")])
        .await;
    assert_eq!(session_token_code(&app, &credentials).await, "SUCCESS");
    assert_eq!(
        browser
            .post(&path, &[("csrf", &keys.csrf()), ("active", "maybe")])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

async fn another_accounts_application_is_not_found_and_nothing_changes(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.answer_with(503);
    let jane = Browser::signed_up(&app, JANE).await;
    let created = jane.create_app("Jane's Secret Portal", &receiver.url).await;
    let credentials = created.credentials();
    // A locked user, and a callback given up on, for unlock and resend to aim at.
    let token = finished_sign_in(
        &app,
        &credentials,
        "user@example.com",
        Verdict::Exhausted { locked: true },
    )
    .await;
    let callback = given_up_callback(&app, &token).await;
    let device = stored_device(
        &app,
        &credentials,
        "user@example.com",
        "Jane's user's phone",
    )
    .await;
    let before = stored(&app, credentials.client_id).await;

    let john = Browser::signed_up(&app, JOHN).await;
    let johns_list = john.get("/console").await;
    assert!(!johns_list.says("Jane's Secret Portal"));
    let csrf = johns_list.csrf();
    let id = &created.client_id;
    let remove_device = format!("devices/{}/remove", device.id);
    for tab in [
        "",
        "settings",
        "keys",
        "rotate-api-key",
        "rotate-callback-secret",
        "delete",
        "integration",
        "users",
        "sign-ins",
        "callbacks",
        "audit",
        &remove_device,
    ] {
        let page = john
            .get(format!("/console/apps/{id}/{tab}").trim_end_matches('/'))
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "GET {tab}");
        assert!(!page.says("Jane's Secret Portal"), "GET {tab}");
    }
    let resend = format!("callbacks/{}/resend", callback.id);
    let posts: [(&str, &[(&str, &str)]); 8] = [
        (
            "settings",
            &[
                ("name", "Stolen"),
                ("ips", "0.0.0.0/0"),
                ("callback_url", "https://evil.example/cb"),
                ("redirect_uris", "https://evil.example/r"),
            ],
        ),
        ("rotate-api-key", &[]),
        ("rotate-callback-secret", &[]),
        ("activation", &[("active", "false")]),
        ("delete", &[("name", "Jane's Secret Portal")]),
        ("users/unlock", &[("email", "user@example.com")]),
        (&resend, &[]),
        (&remove_device, &[]),
    ];
    for (path, fields) in posts {
        let form = [&[("csrf", csrf.as_str())], fields].concat();
        let page = john
            .post(&format!("/console/apps/{id}/{path}"), &form)
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "POST {path}");
        assert!(!page.says("Jane's Secret Portal"), "POST {path}");
    }
    // Ids that are nobody's, or not ids at all, are not found either.
    for id in [eauth_core::ClientId::generate().to_string(), "x".into()] {
        assert_eq!(
            john.get(&format!("/console/apps/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
    }

    // Nothing changed.
    let after = stored(&app, credentials.client_id).await;
    assert_eq!(after.name, before.name);
    assert_eq!(after.ip_allow_list, before.ip_allow_list);
    assert_eq!(after.callback_url, before.callback_url);
    assert_eq!(after.api_key_hash, before.api_key_hash);
    assert_eq!(after.sealed_callback_secret, before.sealed_callback_secret);
    assert!(after.active);
    let enrollment = app
        .store
        .enrollment(
            credentials.client_id,
            &Email::parse("user@example.com").expect("email"),
        )
        .await
        .expect("store")
        .expect("enrolled");
    assert!(enrollment.locked_at.is_some(), "still locked");
    let callback_after = app
        .store
        .callback_of_session(callback.session_id)
        .await
        .expect("store")
        .expect("callback");
    assert_eq!(
        callback_after.status,
        CallbackStatus::Failed,
        "not sent again"
    );
    assert!(device_exists(&app, device.id).await, "the device stays");
    assert!(
        audit_log_of(&app, JOHN)
            .await
            .iter()
            .all(|e| e.client_id.is_none()),
        "john did nothing to any application"
    );
    // Jane still sees and uses hers: her key passes, and the answer is about her locked user.
    assert_eq!(jane.app_page(&created, "").await.status, StatusCode::OK);
    assert_eq!(session_token_code(&app, &credentials).await, "MFA_LOCKED");
}

/// The callback of a finished session, once its first delivery failed, marked as given up on
/// (as the worker does after a day) so that nothing but "send again" moves it.
async fn given_up_callback(app: &TestApp, token: &str) -> eauth_store::Callback {
    let callback = app.callback_once(token, |c| c.last_error.is_some()).await;
    let gave_up = eauth_store::DeliveryResult::GaveUp {
        error: "HTTP 503".into(),
    };
    app.store
        .record_delivery(&callback, &gave_up, callback.next_attempt_at)
        .await
        .expect("store");
    app.callback_once(token, |_| true).await
}

const ALL: eauth_store::PageRequest = eauth_store::PageRequest {
    offset: 0,
    limit: 100,
};

/// Everything `account` did, newest first.
async fn audit_log_of(app: &TestApp, account: &str) -> Vec<eauth_store::AuditEntry> {
    let account = Email::parse(account).expect("email");
    app.store
        .audit_log(&account, None, ALL)
        .await
        .expect("store")
        .items
}

async fn forms_without_this_sessions_token_are_refused_and_change_nothing(app: TestApp) {
    let (jane, created) = Browser::with_portal(&app, JANE).await;
    let credentials = created.credentials();
    enroll(&app, &credentials, "user@example.com").await;
    let device = App::registered(&app, &credentials, "user@example.com")
        .await
        .id
        .expect("registered");
    let john = Browser::signed_up(&app, JOHN).await;
    let johns_token = john.get("/console").await.csrf();
    let janes_token = jane.get("/console").await.csrf();

    let rotate = format!("/console/apps/{}/rotate-api-key", created.client_id);
    let remove_device = format!(
        "/console/apps/{}/devices/{device}/remove",
        created.client_id
    );
    for (case, token) in [
        ("no token", None),
        ("a made-up token", Some("0".repeat(64))),
        ("another session's token", Some(johns_token.clone())),
    ] {
        let form: Vec<(&str, &str)> = token.iter().map(|t| ("csrf", t.as_str())).collect();
        let page = jane.post(&rotate, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}");
        assert!(page.says("Please reload the page"), "{case}");
        let page = jane
            .post(
                "/console/apps/new",
                &[
                    form.as_slice(),
                    &[
                        ("name", "Forged"),
                        ("ips", "127.0.0.1"),
                        ("callback_url", "https://evil.example/cb"),
                        ("redirect_uris", "https://evil.example/r"),
                    ],
                ]
                .concat(),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}");
        let page = jane.post(&remove_device, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}");
        let page = jane.post("/console/sign-out", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{case}");
    }
    assert!(device_exists(&app, device).await, "device kept");
    assert_eq!(
        session_token_code(&app, &credentials).await,
        "SUCCESS",
        "key unchanged"
    );
    assert_eq!(
        app.store
            .applications_of(&Email::parse(JANE).expect("email"))
            .await
            .expect("store")
            .len(),
        1,
        "nothing created"
    );
    assert_eq!(
        jane.get("/console").await.status,
        StatusCode::OK,
        "still signed in"
    );

    // The register and sign-in forms are bound to this browser too.
    let elsewhere = Browser::new(&app);
    let page = elsewhere
        .post(
            "/console/sign-in",
            &[
                ("csrf", &janes_token),
                ("email", JANE),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let form_token = Browser::new(&app).get("/console/register").await.csrf();
    let page = elsewhere
        .post(
            "/console/register",
            &[
                ("csrf", &form_token),
                ("email", "mallory@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!has_account(&app, "mallory@example.com").await);
}

async fn next_only_ever_leads_to_a_console_page(app: TestApp) {
    Browser::signed_up(&app, JANE).await;
    let browser = Browser::new(&app);
    let wanted = "/console/audit?page=2";
    let page = browser.get(wanted).await;
    assert_eq!(
        page.location(),
        Some("/console/sign-in?next=%2Fconsole%2Faudit%3Fpage%3D2")
    );
    let form = browser.get(page.location().expect("sign-in")).await;
    assert_eq!(form.input("next").as_deref(), Some(wanted));
    let signed_in = browser.sign_in_then(&form, wanted).await;
    assert_eq!(signed_in.location(), Some(wanted));

    for evil in [
        "https://evil.example/console",
        "//evil.example/console",
        "/\\evil.example",
        "/console//evil.example",
        "javascript:alert(1)",
        "/console/../start-authentication",
    ] {
        let browser = Browser::new(&app);
        let form = browser
            .get(&format!(
                "/console/sign-in?next={}",
                url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(form.input("next"), None, "{evil} is not put into the form");
        let page = browser.sign_in_then(&form, evil).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{evil}");
        assert_eq!(page.location(), Some("/console"), "{evil}");
    }
}

async fn invalid_fields_are_shown_next_to_each_field_and_nothing_is_saved(app: TestApp) {
    let browser = Browser::signed_up(&app, JANE).await;
    let good = [
        ("name", "Portal"),
        ("ips", "127.0.0.1"),
        ("callback_url", "https://portal.example.com/eauth"),
        ("redirect_uris", "https://portal.example.com/callback"),
    ];
    let with = |field: &str, value: &'static str| {
        good.iter()
            .map(|&(k, v)| if k == field { (k, value) } else { (k, v) })
            .collect::<Vec<_>>()
    };
    // (the form, the id of the message expected, what it says)
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (with("name", "  "), "name-error", "Name is empty."),
        (
            with("name", "a:b"),
            "name-error",
            "Name contains a control character or a colon.",
        ),
        (
            with("ips", ""),
            "ips-error",
            "At least one IP address or range is required.",
        ),
        (
            with("ips", "127.0.0.1\n10.0.0.0/33"),
            "ips-error",
            "\"10.0.0.0/33\" is not an IP address or CIDR range.",
        ),
        (
            with("ips", "example.com"),
            "ips-error",
            "\"example.com\" is not an IP address",
        ),
        (
            with("callback_url", "portal.example.com"),
            "callback_url-error",
            "is not an absolute URL",
        ),
        (
            with("callback_url", "http://portal.example.com/cb"),
            "callback_url-error",
            "must use https",
        ),
        (
            with("redirect_uris", "\n\n"),
            "redirect_uris-error",
            "At least one redirect URI is required.",
        ),
        (
            with("redirect_uris", "https://portal.example.com/cb#x"),
            "redirect_uris-error",
            "must not contain credentials or a #fragment",
        ),
    ];
    for (fields, error_id, message) in cases {
        let page = browser.create_app_with(&fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert!(page.says("Nothing was saved"), "{message}");
        let shown = page
            .body
            .split(&format!("id=\"{error_id}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</p>").next())
            .map(unescape)
            .unwrap_or_else(|| panic!("no {error_id} for {message}: {}", page.body));
        assert!(
            shown.contains(message),
            "{error_id}: {shown:?} should say {message:?}"
        );
        // Each other field has no complaint, and keeps what was typed.
        let errors = page.body.matches("class=\"field-error\"").count();
        assert_eq!(errors, 1, "{message}");
        for (field, value) in &fields {
            if *field == "ips" || *field == "redirect_uris" {
                assert!(
                    page.body.contains(&format!(">{value}</textarea>")),
                    "{field} kept"
                );
            } else {
                assert_eq!(page.input(field).as_deref(), Some(*value), "{field} kept");
            }
        }
    }
    // All wrong at once: every field says so.
    let page = browser.create_app_with(&[]).await;
    assert_eq!(page.body.matches("class=\"field-error\"").count(), 4);
    assert!(
        app.store
            .applications_of(&Email::parse(JANE).expect("email"))
            .await
            .expect("store")
            .is_empty(),
        "nothing saved"
    );

    // Editing is checked the same way, and a refused edit changes nothing.
    let created = browser
        .create_app("Portal", "https://portal.example.com/eauth")
        .await;
    let form = browser.app_page(&created, "settings").await;
    assert_eq!(form.input("name").as_deref(), Some("Portal"));
    let csrf = form.csrf();
    let edit = |ips: &'static str, callback_url: &'static str| {
        let fields = [
            ("csrf", csrf.clone()),
            ("name", "Renamed".to_owned()),
            ("ips", ips.to_owned()),
            ("callback_url", callback_url.to_owned()),
            (
                "redirect_uris",
                "https://portal.example.com/callback".to_owned(),
            ),
        ];
        let (browser, created) = (&browser, &created);
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.act(created, "settings", &fields).await
        }
    };
    let refused = edit("not an address", "https://portal.example.com/eauth").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.says("\"not an address\" is not an IP address or CIDR range"));
    let unchanged = stored(&app, created.credentials().client_id).await;
    assert_eq!(unchanged.name.as_str(), "Portal");

    let saved = edit("192.0.2.0/24\n::1", "https://portal.example.com/v2/eauth").await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(
        browser
            .get(saved.location().expect("overview"))
            .await
            .says("Settings saved.")
    );
    let changed = stored(&app, created.credentials().client_id).await;
    assert_eq!(changed.name.as_str(), "Renamed");
    assert_eq!(
        changed.ip_allow_list.entries().collect::<Vec<_>>(),
        ["192.0.2.0/24", "::1/128"]
    );
    assert_eq!(
        changed.callback_url.to_string(),
        "https://portal.example.com/v2/eauth"
    );
    // 127.0.0.1 is no longer whitelisted (the test calls over IPv4).
    assert_eq!(
        app.session_token(&created.credentials(), "user@example.com")
            .await
            .code(),
        "IP_NOT_ALLOWED"
    );
}

async fn users_are_listed_searched_paged_and_unlocked(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let credentials = created.credentials();
    finished_sign_in(
        &app,
        &credentials,
        "locked@example.com",
        Verdict::Exhausted { locked: true },
    )
    .await;
    finished_sign_in(
        &app,
        &credentials,
        "happy@example.com",
        Verdict::Approved { step: 1 },
    )
    .await;

    let users = browser.app_page(&created, "users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.says("locked@example.com") && users.says("happy@example.com"));
    assert!(users.says("Locked since"));
    assert_eq!(
        users.body.matches(">Unlock</button>").count(),
        1,
        "only the locked user"
    );

    let found = browser
        .get(&format!(
            "/console/apps/{}/users?q=HAPPY",
            created.client_id
        ))
        .await;
    assert!(found.says("happy@example.com") && !found.says("locked@example.com"));
    assert_eq!(found.input("q").as_deref(), Some("HAPPY"));

    let unlocked = browser
        .act(
            &created,
            "users/unlock",
            &[("csrf", &users.csrf()), ("email", "locked@example.com")],
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER);
    let after = browser.get(unlocked.location().expect("back")).await;
    assert!(after.says("The user was unlocked"));
    assert!(!after.says("Locked since"));
    let enrollment = app
        .store
        .enrollment(
            credentials.client_id,
            &Email::parse("locked@example.com").expect("email"),
        )
        .await
        .expect("store")
        .expect("enrolled");
    assert_eq!(
        (enrollment.locked_at, enrollment.consecutive_failures),
        (None, 0)
    );

    // Thirty more users: two pages of 25.
    for i in 0..30 {
        assert_eq!(
            app.enable(&credentials, &format!("user{i:02}@example.com"))
                .await
                .code(),
            "SUCCESS"
        );
    }
    let first = browser.app_page(&created, "users").await;
    assert!(first.says("Page 1 of 2"));
    let next = first
        .body
        .split("rel=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|href| href.split('"').next())
        .map(unescape)
        .expect("a link to page 2");
    let second = browser.get(&next).await;
    assert!(second.says("Page 2 of 2"));
    assert_eq!(
        second.body.matches("<td data-label=\"Email\"").count(),
        32 - 25
    );
}

async fn a_users_devices_are_listed_and_one_is_removed_after_a_confirmation(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let credentials = created.credentials();
    for email in ["alice@example.com", "bob@example.com", "carol@example.com"] {
        enroll(&app, &credentials, email).await;
    }
    // Alice's and Bob's apps register through the app API, as the eauth app does.
    let alices = App::registered(&app, &credentials, "alice@example.com").await;
    let bobs = App::registered(&app, &credentials, "bob@example.com").await;
    let alices_id = alices.id.expect("registered");
    let second = stored_device(&app, &credentials, "alice@example.com", "Alice's <tablet>").await;

    let users = browser.app_page(&created, "users").await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.says("test phone") && users.says("registered 20"));
    assert!(users.says("Alice's <tablet>"), "the name, escaped");
    assert!(!users.body.contains("Alice's <tablet>"), "never raw HTML");
    let remove = format!(
        "/console/apps/{}/devices/{alices_id}/remove",
        created.client_id
    );
    assert!(
        users.body.contains(&format!("href=\"{remove}\"")),
        "{}",
        users.body
    );
    assert_eq!(users.body.matches(">Remove…</a>").count(), 3);

    // The link asks first; nothing is removed by looking.
    let confirm = browser.get(&remove).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.says("Remove this device?"));
    assert!(confirm.says("test phone") && confirm.says("alice@example.com"));
    assert!(device_exists(&app, alices_id).await);
    assert_eq!(alices.signins(None).await.code(), "SUCCESS");

    // Without the session's form token it is refused:
    // forms_without_this_sessions_token_are_refused_and_change_nothing.
    let removed = browser.post(&remove, &[("csrf", &confirm.csrf())]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let after = browser
        .get(removed.location().expect("back to the users"))
        .await;
    assert!(after.says("The device was removed"));
    assert!(!after.body.contains(&remove));
    assert_eq!(after.body.matches(">Remove…</a>").count(), 2);
    // From this moment the app is refused; Bob's and Alice's other device are untouched.
    assert!(!device_exists(&app, alices_id).await);
    let answer = alices.signins(None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, "UNKNOWN_DEVICE")
    );
    assert_eq!(bobs.signins(None).await.code(), "SUCCESS");
    assert!(device_exists(&app, second.id).await);
    // Alice is still enrolled and still signs in with a code.
    assert!(app.is_enrolled(&credentials, "alice@example.com").await);
    assert_eq!(
        app.session_token(&credentials, "alice@example.com")
            .await
            .code(),
        "SUCCESS"
    );

    // Gone is gone: again, it is not found.
    assert_eq!(browser.get(&remove).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        browser
            .post(&remove, &[("csrf", &confirm.csrf())])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for bad in ["not-a-device", &DeviceId::generate().to_string()] {
        let path = format!("/console/apps/{}/devices/{bad}/remove", created.client_id);
        assert_eq!(
            browser.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
        assert_eq!(
            browser
                .post(&path, &[("csrf", &confirm.csrf())])
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }

    // The audit log says who removed which device of whom, from where: once.
    let log = browser.app_page(&created, "audit").await;
    assert_eq!(
        unescape(&log.body)
            .matches("Removed a user's device")
            .count(),
        1,
        "{}",
        log.body
    );
    assert!(log.says("Device “test phone” of user alice@example.com"));
    assert!(log.says("127.0.0.1") && log.says(JANE));
}

async fn a_device_of_another_application_cannot_be_removed_through_ones_own(app: TestApp) {
    let jane = Browser::signed_up(&app, JANE).await;
    let janes = jane
        .create_app("Jane's Portal", "https://portal.example.com/eauth")
        .await;
    let janes_other = jane
        .create_app("Jane's Other Portal", "https://portal.example.com/eauth")
        .await;
    let credentials = janes.credentials();
    enroll(&app, &credentials, "user@example.com").await;
    let device = App::registered(&app, &credentials, "user@example.com").await;
    let device_id = device.id.expect("registered");

    // John owns an application of his own, so his console passes the ownership check for its
    // id: only the device's own application may remove it.
    let john = Browser::signed_up(&app, JOHN).await;
    let johns = john
        .create_app("John's Portal", "https://portal.example.com/eauth")
        .await;
    let csrf = john.get("/console").await.csrf();
    let crafted = format!("devices/{device_id}/remove");
    let page = john.app_page(&johns, &crafted).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.says("test phone") && !page.says("user@example.com"));
    let page = john.act(&johns, &crafted, &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Nor through another application of the device's own account.
    let csrf = jane.get("/console").await.csrf();
    assert_eq!(
        jane.app_page(&janes_other, &crafted).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        jane.act(&janes_other, &crafted, &[("csrf", &csrf)])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert!(device_exists(&app, device_id).await, "the device stays");
    assert_eq!(device.signins(None).await.code(), "SUCCESS");
    for account in [JANE, JOHN] {
        assert!(
            audit_log_of(&app, account)
                .await
                .iter()
                .all(|e| e.action != eauth_core::console::AuditAction::DeviceRemoved),
            "{account} removed nothing"
        );
    }
}

async fn sign_ins_are_listed_and_filtered(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let credentials = created.credentials();
    finished_sign_in(
        &app,
        &credentials,
        "jane.user@example.com",
        Verdict::Approved { step: 1 },
    )
    .await;
    finished_sign_in(
        &app,
        &credentials,
        "john.user@example.com",
        Verdict::Exhausted { locked: false },
    )
    .await;

    let all = browser.app_page(&created, "sign-ins").await;
    assert!(all.says("jane.user@example.com") && all.says("john.user@example.com"));
    assert!(all.says(">Approved<") && all.says(">Rejected<"));
    let path = format!("/console/apps/{}/sign-ins", created.client_id);
    let rejected = browser.get(&format!("{path}?outcome=REJECTED")).await;
    assert!(rejected.says("john.user@example.com") && !rejected.says("jane.user@example.com"));
    assert!(rejected.body.contains("value=\"REJECTED\" selected"));
    let janes = browser.get(&format!("{path}?email=jane")).await;
    assert!(janes.says("jane.user@example.com") && !janes.says("john.user@example.com"));
    let none = browser
        .get(&format!("{path}?outcome=TIMEOUT&email=jane"))
        .await;
    assert!(none.says("No sign-ins match these filters"));
    // A made-up outcome is no filter, not an error.
    assert_eq!(
        browser.get(&format!("{path}?outcome=%3Cx%3E")).await.status,
        StatusCode::OK
    );
}

async fn a_failed_callback_can_be_sent_again(app: TestApp) {
    let mut receiver = Receiver::start().await;
    receiver.answer_with(503);
    let browser = Browser::signed_up(&app, JANE).await;
    let created = browser.create_app("Portal", &receiver.url).await;
    let credentials = created.credentials();
    let token = finished_sign_in(
        &app,
        &credentials,
        "user@example.com",
        Verdict::Approved { step: 1 },
    )
    .await;
    receiver.next_within(Duration::from_secs(10)).await;
    // The failure is recorded shortly after the attempt.
    let callback = app.callback_once(&token, |c| c.last_error.is_some()).await;
    assert_eq!(callback.status, CallbackStatus::Pending);

    let page = browser.app_page(&created, "callbacks").await;
    assert!(
        page.says("the callback URL answered HTTP 503"),
        "{}",
        page.body
    );
    assert!(page.says(">Pending<") && page.says("<code>true</code>"));
    receiver.answer_with(200);
    let sent = browser
        .post(
            &format!(
                "/console/apps/{}/callbacks/{}/resend",
                created.client_id, callback.id
            ),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    // Without waiting for the 5-second retry.
    let call = tokio::time::timeout(Duration::from_secs(3), async {
        receiver.next_within(Duration::from_secs(3)).await
    })
    .await
    .expect("sent again at once");
    assert_eq!(call.session_token(), token);
    app.callback_once(&token, |c| c.status == CallbackStatus::Delivered)
        .await;
    let page = browser.app_page(&created, "callbacks").await;
    assert!(page.says(">Delivered<"));
    assert!(!page.says(">Send again</button>"), "nothing left to send");
}

async fn deleting_needs_the_name_and_removes_everything(app: TestApp) {
    let browser = Browser::signed_up(&app, JANE).await;
    let created = browser
        .create_app("Doomed Portal", "https://portal.example.com/eauth")
        .await;
    let credentials = created.credentials();
    let token = finished_sign_in(
        &app,
        &credentials,
        "user@example.com",
        Verdict::Approved { step: 1 },
    )
    .await;

    let confirm = browser.app_page(&created, "delete").await;
    assert!(
        confirm
            .body
            .contains("Type <strong>Doomed Portal</strong> to confirm")
    );
    let path = format!("/console/apps/{}/delete", created.client_id);
    let refused = browser
        .post(&path, &[("csrf", &confirm.csrf()), ("name", "Doomed")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.says("Type the application's name exactly"));
    assert!(
        app.store
            .application(credentials.client_id)
            .await
            .expect("store")
            .is_some()
    );

    let deleted = browser
        .post(
            &path,
            &[("csrf", &confirm.csrf()), ("name", " Doomed Portal ")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), Some("/console?notice=deleted"));
    assert!(
        app.store
            .application(credentials.client_id)
            .await
            .expect("store")
            .is_none()
    );
    assert_eq!(
        app.store.session(token_id(&token)).await.expect("store"),
        None
    );
    assert!(!app.is_enrolled(&credentials, "user@example.com").await);
    assert_eq!(
        session_token_code(&app, &credentials).await,
        "INVALID_API_KEY"
    );
    assert_eq!(
        browser.app_page(&created, "").await.status,
        StatusCode::NOT_FOUND
    );
    let audit = browser.get("/console/audit").await;
    assert!(audit.says("Deleted the application") && audit.says("Doomed Portal"));
}

async fn the_audit_log_says_who_did_what_from_where(app: TestApp) {
    let browser = Browser::signed_up(&app, JANE).await;
    let created = browser
        .create_app("Audited", "https://portal.example.com/eauth")
        .await;
    let keys = browser.app_page(&created, "keys").await;
    browser
        .act(&created, "rotate-api-key", &[("csrf", &keys.csrf())])
        .await;
    browser
        .act(
            &created,
            "activation",
            &[("csrf", &keys.csrf()), ("active", "false")],
        )
        .await;
    let log = browser.app_page(&created, "audit").await;
    assert_eq!(log.status, StatusCode::OK);
    let order: Vec<usize> = [
        "Deactivated the application",
        "Rotated the API key",
        "Created the application",
    ]
    .iter()
    .map(|what| {
        log.body
            .find(what)
            .unwrap_or_else(|| panic!("{what}: {}", log.body))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(log.says("127.0.0.1") && log.says(JANE));
    assert!(
        !log.says("Registered the account"),
        "the application's log only"
    );
    let all = browser.get("/console/audit").await;
    assert!(all.says("Registered the account") && all.says("Rotated the API key"));
    // No secret in the log.
    assert!(!all.body.contains(&created.api_key) && !all.body.contains(&created.callback_secret));
}

async fn the_overview_draws_the_outcomes_as_an_svg(app: TestApp) {
    let browser = Browser::signed_up(&app, JANE).await;
    let created = browser
        .create_app("Charted <Portal>", "https://portal.example.com/eauth")
        .await;
    let credentials = created.credentials();
    for (email, verdict) in [
        ("a@example.com", Verdict::Approved { step: 1 }),
        ("b@example.com", Verdict::Approved { step: 1 }),
        ("c@example.com", Verdict::Exhausted { locked: false }),
    ] {
        finished_sign_in(&app, &credentials, email, verdict).await;
    }
    let page = browser.app_page(&created, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<svg ").count(), 2, "a day and a month");
    assert!(page.body.contains("<rect class=\"approved\""));
    assert!(page.body.contains("<rect class=\"rejected\""));
    assert!(page.says("3 finished sign-ins; 2 approved, 1 rejected"));
    assert!(page.body.contains("<span class=\"stat\">3</span> enrolled"));
    // The name is text, never markup.
    assert!(page.body.contains("Charted &#60;Portal&#62;") && !page.body.contains("<Portal>"));

    // Every console page: a strict policy, and nothing inline for it to allow.
    let csp = page.header("content-security-policy");
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));
    assert!(!page.body.contains(" onclick=") && !page.body.contains(" onload="));
    let css = browser.get("/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert_eq!(
        browser.get("/assets/console.js").await.status,
        StatusCode::OK
    );
    assert_eq!(
        browser.get("/console/no-such-page").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(browser.get("/console/").await.location(), Some("/console"));
}

async fn the_integration_page_is_filled_in_for_the_application(app: TestApp) {
    let (browser, created) = Browser::with_portal(&app, JANE).await;
    let page = browser.app_page(&created, "integration").await;
    assert_eq!(page.status, StatusCode::OK);
    let toggle = page.code("snippet-enable").expect("mfa/toggle example");
    assert!(toggle.contains(&format!("'{}/authen-api/api/v1/mfa/toggle'", app.base_url)));
    assert!(toggle.contains(&format!("\"client_id\": \"{}\"", created.client_id)));
    assert!(toggle.contains("X-API-Key: $EAUTH_API_KEY"));
    let session = page
        .code("snippet-session-token")
        .expect("session-token example");
    assert!(session.contains(&format!("{}/authen-api/api/v1/session-token", app.base_url)));
    let popup = page.code("snippet-popup").expect("popup example");
    assert!(popup.contains(&format!(
        "<script src=\"{}/sdk/eauth.js\"></script>",
        app.base_url
    )));
    assert!(popup.contains("redirectUri: \"https://portal.example.com/callback\""));
    let redirect = page.code("snippet-redirect").expect("redirect example");
    assert!(redirect.ends_with("redirect_uri=https%3A%2F%2Fportal.example.com%2Fcallback"));
    // The page shows the markup as text: no script of the example runs in the console.
    assert!(!page.body.contains("<script src=\"https://127.0.0.1"));

    // The example works as written (with the key that was shown once).
    let toggle_body: serde_json::Value = serde_json::from_str(
        toggle
            .split("--data-raw '")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('\''))
            .expect("JSON body"),
    )
    .expect("valid JSON");
    let answer = app
        .post(
            "/authen-api/api/v1/mfa/toggle",
            &created.api_key,
            &toggle_body,
        )
        .await;
    assert_eq!(answer.code(), "SUCCESS");
    assert_eq!(
        session_token_code(&app, &created.credentials()).await,
        "SUCCESS"
    );
}
