//! Push approval over HTTP: a device registers with a code, the sign-in page shows a number,
//! the app approves or denies with signed requests, and the page notices by polling its
//! status endpoint. Every security property has a test that fails if it breaks.

use std::time::{Duration, Instant};

use eauth_core::{
    DeviceId, DeviceKey, SessionStatus,
    device::{
        CanonicalRequest, DEVICE_HEADER, NONCE_HEADER, RequestNonce, SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
    },
};
use eauth_store::testing::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    backend_tests,
    helpers::{Answer, Page, TestApp, TestApplication, spawn_app_with, token_id},
    webview::{
        Browser, EMAIL, PORTAL, code_at, open_redirect, portal, redirect_query, session_token,
        status_of, wrong_code,
    },
};

backend_tests!(
    registration_with_a_current_code_uses_the_code_up_for_the_sign_in_page,
    registration_with_a_wrong_replayed_or_unenrolled_code_is_refused,
    the_page_shows_a_number_only_to_users_with_a_device_and_the_code_still_works,
    the_right_number_approves_and_the_page_redirects_after_the_backend_was_told,
    deny_on_the_device_rejects_and_the_page_shows_the_refusal,
    three_wrong_numbers_reject_the_sign_in,
    unsigned_wrongly_signed_stale_and_replayed_requests_are_refused,
    a_replayed_request_is_refused_by_another_process_too,
    a_device_cannot_see_or_decide_another_users_sign_ins,
    enabling_again_or_disabling_removes_the_devices,
    a_waiting_poll_returns_as_soon_as_a_sign_in_is_offered,
    a_waiting_poll_hears_of_a_sign_in_offered_by_another_process,
);

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("seconds")
}

/// The eAuthenticator app as the tests drive it: a key, and the id it was registered under.
pub(crate) struct App {
    pub(crate) key: DeviceKey,
    pub(crate) id: Option<DeviceId>,
    pub(crate) client: reqwest::Client,
    pub(crate) base_url: String,
}

/// The signature headers of one request.
pub(crate) type Headers = Vec<(&'static str, String)>;

impl App {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            key: DeviceKey::generate(),
            id: None,
            client: app.client.clone(),
            base_url: app.base_url.clone(),
        }
    }

    /// The headers of `method path` with `body`, signed by `key` at `timestamp`.
    pub(crate) fn headers_with(
        &self,
        key: &DeviceKey,
        method: &str,
        path: &str,
        body: &str,
        timestamp: i64,
    ) -> Headers {
        let nonce = RequestNonce::generate();
        let signature = CanonicalRequest {
            method,
            path_and_query: path,
            timestamp,
            nonce: &nonce,
            device: self.id,
            body: body.as_bytes(),
        }
        .sign(key);
        let mut headers = vec![
            (TIMESTAMP_HEADER, timestamp.to_string()),
            (NONCE_HEADER, nonce.as_str().to_owned()),
            (SIGNATURE_HEADER, signature.to_base64url()),
        ];
        if let Some(id) = self.id {
            headers.push((DEVICE_HEADER, id.to_string()));
        }
        headers
    }

    pub(crate) fn headers(&self, method: &str, path: &str, body: &str) -> Headers {
        self.headers_with(&self.key, method, path, body, now())
    }

    pub(crate) async fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &Headers,
        body: &str,
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Answer { status, body }
    }

    pub(crate) async fn send(&self, method: &str, path: &str, body: &str) -> Answer {
        self.send_with(method, path, &self.headers(method, path, body), body)
            .await
    }

    pub(crate) async fn register(
        &mut self,
        portal: &TestApplication,
        email: &str,
        code: &str,
    ) -> Answer {
        self.register_from(portal, email, code, None).await
    }

    /// Registers, as seen from `source` (an `X-Forwarded-For` the service believes when the
    /// test made loopback a trusted proxy).
    pub(crate) async fn register_from(
        &mut self,
        portal: &TestApplication,
        email: &str,
        code: &str,
        source: Option<&str>,
    ) -> Answer {
        let body = json!({
            "client_id": portal.client_id.to_string(),
            "email": email,
            "public_key": self.key.public_key().to_base64url(),
            "code": code,
            "name": "test phone",
        })
        .to_string();
        let path = "/app-api/v1/devices";
        let mut headers = self.headers("POST", path, &body);
        if let Some(source) = source {
            headers.push(("x-forwarded-for", source.to_owned()));
        }
        let answer = self.send_with("POST", path, &headers, &body).await;
        if answer.status == StatusCode::CREATED {
            let id = answer.body["data"]["device_id"].as_str().expect("id");
            self.id = Some(DeviceId::parse(id).expect("device id"));
        }
        answer
    }

    /// A registered app for `email`, with the current code (which is then used up).
    pub(crate) async fn registered(app: &TestApp, portal: &TestApplication, email: &str) -> Self {
        let mut device = Self::new(app);
        let answer = device.register(portal, email, &code_at(0)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        device
    }

    pub(crate) async fn signins(&self, wait: Option<u64>) -> Answer {
        let path = match wait {
            Some(seconds) => format!("/app-api/v1/signins?wait={seconds}"),
            None => "/app-api/v1/signins".to_owned(),
        };
        self.send("GET", &path, "").await
    }

    pub(crate) async fn signin_ids(&self) -> Vec<String> {
        let answer = self.signins(None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        answer.body["data"]["signins"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    }

    pub(crate) async fn approve(&self, signin: &str, number: i64) -> Answer {
        let body = json!({ "number": number }).to_string();
        self.send(
            "POST",
            &format!("/app-api/v1/signins/{signin}/approve"),
            &body,
        )
        .await
    }

    pub(crate) async fn deny(&self, signin: &str) -> Answer {
        self.send("POST", &format!("/app-api/v1/signins/{signin}/deny"), "")
            .await
    }
}

/// The number the page shows, if any.
fn shown_number(page: &Page) -> Option<i64> {
    let after = page.body.split("class=\"push-number\"").nth(1)?;
    let text = after.split('>').nth(1)?.split('<').next()?;
    Some(text.trim().parse().expect("a number"))
}

/// What the page's script hears from the status endpoint.
async fn page_status(browser: &Browser, token: &str) -> Value {
    let query = redirect_query(token);
    let url = url::Url::parse_with_params(
        &format!("{}/start-authentication/status", browser.base_url),
        &query,
    )
    .expect("url");
    let response = browser
        .client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the status endpoint answers JSON"
    );
    response.json().await.expect("JSON")
}

/// A portal with an enrolled user and a registered app, and a pending sign-in whose page is
/// open in a browser: the number it shows and the session token.
pub(crate) struct Scene {
    pub(crate) portal: TestApplication,
    pub(crate) receiver: crate::receiver::Receiver,
    pub(crate) device: App,
    pub(crate) browser: Browser,
    pub(crate) token: String,
    pub(crate) number: i64,
}

impl Scene {
    pub(crate) async fn new(app: &TestApp) -> Self {
        let (portal, receiver) = portal(app).await;
        let device = App::registered(app, &portal, EMAIL).await;
        let token = session_token(app, &portal).await;
        let browser = Browser::new(app);
        let page = open_redirect(&browser, &token).await;
        let number = shown_number(&page).expect("a number is shown");
        Self {
            portal,
            receiver,
            device,
            browser,
            token,
            number,
        }
    }

    pub(crate) fn signin(&self) -> String {
        token_id(&self.token).to_string()
    }

    /// A number that is not the one shown.
    fn wrong_number(&self) -> i64 {
        if self.number == 99 {
            10
        } else {
            self.number + 1
        }
    }
}

async fn registration_with_a_current_code_uses_the_code_up_for_the_sign_in_page(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let code = code_at(0);
    let mut device = App::new(&app);
    let answer = device.register(&portal, EMAIL, &code).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    assert_eq!(answer.code(), "SUCCESS");
    let data = &answer.body["data"];
    assert_eq!(data["application"], "Portal");
    assert_eq!(data["email"], EMAIL);
    assert_eq!(data["client_id"], portal.client_id.to_string());
    assert_eq!(data["name"], "test phone");
    let stored = app
        .store
        .device(device.id.expect("registered"))
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(stored.public_key, device.key.public_key());

    // The same code on the sign-in page is a replay.
    let token = session_token(&app, &portal).await;
    let browser = Browser::new(&app);
    let form = open_redirect(&browser, &token).await.form();
    let page = browser.post(&form, "verify", &code).await;
    assert!(
        page.body.contains("That code was already used"),
        "{}",
        page.body
    );
    assert_eq!(status_of(&app, &token).await, SessionStatus::Pending);
}

async fn registration_with_a_wrong_replayed_or_unenrolled_code_is_refused(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let mut device = App::new(&app);
    let answer = device.register(&portal, EMAIL, &wrong_code()).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "INVALID_CODE")
    );
    assert_eq!(device.id, None);
    let enrollment = app.enrollment(&portal, EMAIL).await;
    assert_eq!(
        enrollment.consecutive_failures, 0,
        "a registration's wrong code never counts towards the sign-in's back-off or lock"
    );

    // A code that registered one device cannot register another.
    let code = code_at(0);
    App::new(&app)
        .register(&portal, EMAIL, &code)
        .await
        .status
        .eq(&StatusCode::CREATED)
        .then_some(())
        .expect("first registration");
    let answer = device.register(&portal, EMAIL, &code).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "CODE_ALREADY_USED")
    );
    // Someone not enrolled gets the answer of a wrong code.
    let answer = device
        .register(&portal, "nobody@example.com", &code_at(30))
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "INVALID_CODE")
    );
    assert_eq!(app.device_count(&portal, EMAIL).await, 1);
}

async fn the_page_shows_a_number_only_to_users_with_a_device_and_the_code_still_works(
    app: TestApp,
) {
    let (portal, _receiver) = portal(&app).await;
    let browser = Browser::new(&app);
    let token = session_token(&app, &portal).await;
    let page = open_redirect(&browser, &token).await;
    assert_eq!(shown_number(&page), None);
    assert!(!page.body.contains("Approve in your eAuthenticator app"));

    App::registered(&app, &portal, EMAIL).await;
    let token = session_token(&app, &portal).await;
    let page = open_redirect(&browser, &token).await;
    let number = shown_number(&page).expect("a number");
    assert!((10..=99).contains(&number), "{number}");
    assert!(page.body.contains("Approve in your eAuthenticator app"));
    assert!(page.has_code_form(), "the code field stays");
    let again = open_redirect(&browser, &token).await;
    assert_eq!(shown_number(&again), Some(number), "one number per sign-in");
    assert_eq!(
        page_status(&browser, &token).await,
        json!({ "next": "wait" })
    );

    // The next code (the current one registered the device) still signs in.
    let done = browser.post(&page.form(), "verify", &code_at(30)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}

async fn the_right_number_approves_and_the_page_redirects_after_the_backend_was_told(app: TestApp) {
    let mut scene = Scene::new(&app).await;
    let answer = scene.device.signins(None).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let signins = answer.body["data"]["signins"].as_array().expect("list");
    assert_eq!(signins.len(), 1);
    let listed = signins[0].as_object().expect("object");
    let mut keys: Vec<&str> = listed.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["application", "created_at", "expires_at", "id", "source_ip"],
        "never the number"
    );
    assert_eq!(listed["id"], scene.signin());
    assert_eq!(listed["application"], "Portal");
    assert_eq!(listed["source_ip"], "127.0.0.1");

    let answer = scene.device.approve(&scene.signin(), scene.number).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::OK, "SUCCESS"),
        "{answer:?}"
    );
    assert_eq!(answer.body["data"]["status"], "APPROVED");
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Approved);

    let next = page_status(&scene.browser, &scene.token).await;
    assert_eq!(next["next"], "redirect", "{next}");
    let location = url::Url::parse(next["location"].as_str().expect("location")).expect("url");
    assert_eq!(location.as_str().split('?').next(), Some(PORTAL));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("session_token"), Some(&scene.token));
    assert_eq!(query.get("state").map(String::as_str), Some("s-123"));

    // The backend heard before the page was told to go on.
    let call = scene
        .receiver
        .already_received()
        .expect("callback delivered before the page moved on");
    assert_eq!(
        (call.result(), call.session_token()),
        ("true", scene.token.as_str())
    );
    assert!(call.is_signed_with(scene.portal.callback_secret.as_deref().expect("secret")));
    assert!(
        scene.device.signin_ids().await.is_empty(),
        "no longer pending"
    );
}

async fn deny_on_the_device_rejects_and_the_page_shows_the_refusal(app: TestApp) {
    let mut scene = Scene::new(&app).await;
    let answer = scene.device.deny(&scene.signin()).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["data"]["status"], "REJECTED");
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Rejected);

    let next = page_status(&scene.browser, &scene.token).await;
    assert_eq!(next["next"], "outcome", "{next}");
    let html = next["html"].as_str().expect("html");
    assert!(
        html.contains("error=REJECT") && !html.contains("session_token="),
        "{html}"
    );
    let call = scene.receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(
        (call.result(), call.session_token()),
        ("false", scene.token.as_str())
    );
    let again = scene.device.approve(&scene.signin(), scene.number).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "SIGNIN_FINISHED")
    );
    assert_eq!(again.body["data"]["status"], "REJECTED");
}

async fn three_wrong_numbers_reject_the_sign_in(app: TestApp) {
    let mut scene = Scene::new(&app).await;
    for left in [2, 1] {
        let answer = scene
            .device
            .approve(&scene.signin(), scene.wrong_number())
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "WRONG_NUMBER")
        );
        assert_eq!(
            answer.body["data"],
            json!({ "attempts_left": left, "status": "PENDING" })
        );
    }
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Pending);
    let answer = scene
        .device
        .approve(&scene.signin(), scene.wrong_number())
        .await;
    assert_eq!(
        answer.body["data"],
        json!({ "attempts_left": 0, "status": "REJECTED" })
    );
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Rejected);
    let call = scene.receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(call.result(), "false");

    // The right number is too late now.
    let answer = scene.device.approve(&scene.signin(), scene.number).await;
    assert_eq!(answer.code(), "SIGNIN_FINISHED");
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Rejected);
}

async fn an_approval_after_expiry_times_the_sign_in_out(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |settings| settings.session_ttl_secs = 2).await else {
        return;
    };
    let mut scene = Scene::new(&app).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = scene.device.approve(&scene.signin(), scene.number).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "SIGNIN_FINISHED"),
        "{answer:?}"
    );
    assert_eq!(answer.body["data"]["status"], "TIMEOUT");
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::TimedOut);
    let call = scene.receiver.next_within(Duration::from_secs(10)).await;
    assert_eq!(call.result(), "false");
    let next = page_status(&scene.browser, &scene.token).await;
    assert!(
        next["html"]
            .as_str()
            .is_some_and(|h| h.contains("error=TIMEOUT")),
        "{next}"
    );
}

#[tokio::test]
async fn an_approval_after_expiry_times_the_sign_in_out_sqlite() {
    an_approval_after_expiry_times_the_sign_in_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_approval_after_expiry_times_the_sign_in_out_postgres() {
    an_approval_after_expiry_times_the_sign_in_out(Backend::Postgres).await;
}

async fn unsigned_wrongly_signed_stale_and_replayed_requests_are_refused(app: TestApp) {
    let scene = Scene::new(&app).await;
    let device = &scene.device;
    let path = format!("/app-api/v1/signins/{}/approve", scene.signin());
    let body = json!({ "number": scene.number }).to_string();
    let stranger = DeviceKey::generate();
    let headers =
        |key: &DeviceKey, timestamp: i64| device.headers_with(key, "POST", &path, &body, timestamp);
    let genuine = headers(&device.key, now());
    let without = |name: &str| -> Headers {
        genuine
            .iter()
            .filter(|(n, _)| *n != name)
            .cloned()
            .collect()
    };
    let unknown_device: Headers = genuine
        .iter()
        .map(|(n, v)| {
            if *n == DEVICE_HEADER {
                (*n, DeviceId::generate().to_string())
            } else {
                (*n, v.clone())
            }
        })
        .collect();
    // Headers are made just before each request: the future case must not drift into the
    // window while earlier cases run (the exact ±60 s edges are tested in eauth-core).
    type MakeHeaders<'a> = Box<dyn Fn() -> Headers + 'a>;
    let cases: Vec<(&str, MakeHeaders, &str, &str)> = vec![
        ("no headers", Box::new(Vec::new), body.as_str(), "UNSIGNED"),
        (
            "no signature",
            Box::new(|| without(SIGNATURE_HEADER)),
            &body,
            "UNSIGNED",
        ),
        (
            "no nonce",
            Box::new(|| without(NONCE_HEADER)),
            &body,
            "UNSIGNED",
        ),
        (
            "no timestamp",
            Box::new(|| without(TIMESTAMP_HEADER)),
            &body,
            "UNSIGNED",
        ),
        (
            "no device",
            Box::new(|| without(DEVICE_HEADER)),
            &body,
            "UNSIGNED",
        ),
        (
            "another device's key",
            Box::new(|| headers(&stranger, now())),
            &body,
            "BAD_SIGNATURE",
        ),
        (
            "another body",
            Box::new(|| genuine.clone()),
            r#"{"number": 10}"#,
            "BAD_SIGNATURE",
        ),
        (
            "unknown device",
            Box::new(|| unknown_device.clone()),
            &body,
            "UNKNOWN_DEVICE",
        ),
        (
            "61 s old",
            Box::new(|| headers(&device.key, now() - 61)),
            &body,
            "STALE_REQUEST",
        ),
        (
            "65 s ahead",
            Box::new(|| headers(&device.key, now() + 65)),
            &body,
            "STALE_REQUEST",
        ),
    ];
    for (case, make_headers, body, code) in cases {
        let answer = device.send_with("POST", &path, &make_headers(), body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, code),
            "{case}: {answer:?}"
        );
        assert_eq!(
            status_of(&app, &scene.token).await,
            SessionStatus::Pending,
            "{case}"
        );
    }

    // The genuine request works once; sent again, it is a replay.
    let answer = device.send_with("POST", &path, &genuine, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let replay = device.send_with("POST", &path, &genuine, &body).await;
    assert_eq!(
        (replay.status, replay.code()),
        (StatusCode::UNAUTHORIZED, "REPLAYED_REQUEST")
    );
    // A registration signed by another key than the one it registers.
    let mut impostor = App::new(&app);
    impostor.key = stranger;
    let registration = json!({
        "client_id": scene.portal.client_id.to_string(),
        "email": EMAIL,
        "public_key": DeviceKey::generate().public_key().to_base64url(),
        "code": code_at(30),
    })
    .to_string();
    let answer = impostor
        .send("POST", "/app-api/v1/devices", &registration)
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE")
    );
}

async fn a_replayed_request_is_refused_by_another_process_too(app: TestApp) {
    let scene = Scene::new(&app).await;
    let (_twin, twin_url) = app.spawn_twin().await;
    let path = "/app-api/v1/signins";
    let headers = scene.device.headers("GET", path, "");
    let answer = scene.device.send_with("GET", path, &headers, "").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let elsewhere = App {
        base_url: twin_url,
        client: scene.device.client.clone(),
        key: DeviceKey::generate(),
        id: scene.device.id,
    };
    let replay = elsewhere.send_with("GET", path, &headers, "").await;
    assert_eq!(
        (replay.status, replay.code()),
        (StatusCode::UNAUTHORIZED, "REPLAYED_REQUEST")
    );
}

async fn a_device_cannot_see_or_decide_another_users_sign_ins(app: TestApp) {
    let scene = Scene::new(&app).await;
    // John, at the same portal, with his own device; and Jane at another portal.
    assert_eq!(
        app.enable(&scene.portal, "john@example.com").await.code(),
        "SUCCESS"
    );
    let johns = App::registered(&app, &scene.portal, "john@example.com").await;
    let (other_portal, _other_receiver) = portal(&app).await;
    let janes_elsewhere = App::registered(&app, &other_portal, EMAIL).await;

    for intruder in [&johns, &janes_elsewhere] {
        assert!(intruder.signin_ids().await.is_empty());
        for answer in [
            intruder.approve(&scene.signin(), scene.number).await,
            intruder.deny(&scene.signin()).await,
        ] {
            assert_eq!(
                (answer.status, answer.code()),
                (StatusCode::NOT_FOUND, "NOT_FOUND"),
                "{answer:?}"
            );
        }
    }
    // Unknown ids look the same.
    let unknown = johns.deny(&uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(unknown.code(), "NOT_FOUND");
    assert_eq!(status_of(&app, &scene.token).await, SessionStatus::Pending);
    assert_eq!(scene.device.signin_ids().await, [scene.signin()]);
}

async fn enabling_again_or_disabling_removes_the_devices(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let device = App::registered(&app, &portal, EMAIL).await;
    assert_eq!(device.signins(None).await.status, StatusCode::OK);

    assert_eq!(app.enable(&portal, EMAIL).await.code(), "SUCCESS");
    let answer = device.signins(None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, "UNKNOWN_DEVICE")
    );

    // Enabling again reset the replay state: the current code registers again.
    let again = App::registered(&app, &portal, EMAIL).await;
    assert_eq!(app.disable(&portal, EMAIL).await.code(), "SUCCESS");
    assert_eq!(again.signins(None).await.code(), "UNKNOWN_DEVICE");
}

async fn a_waiting_poll_returns_as_soon_as_a_sign_in_is_offered(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let device = App::registered(&app, &portal, EMAIL).await;

    let started = Instant::now();
    let empty = device.signins(Some(1)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "held for the wait"
    );
    assert_eq!(empty.body["data"]["signins"], json!([]));

    // A sign-in whose page is not open yet is not offered.
    let token = session_token(&app, &portal).await;
    let poll = tokio::spawn(async move {
        let started = Instant::now();
        (device.signins(Some(20)).await, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!poll.is_finished(), "nothing offered yet");
    let browser = Browser::new(&app);
    open_redirect(&browser, &token).await;
    // Woken when the page made its offer, before the page itself was answered; the
    // once-a-second look would come anywhere up to a second later.
    let shown = Instant::now();
    let (answer, waited) = poll.await.expect("poll");
    assert_eq!(
        answer.body["data"]["signins"][0]["id"],
        token_id(&token).to_string()
    );
    assert!(
        shown.elapsed() < Duration::from_millis(500),
        "woken at once, not by the once-a-second look ({waited:?})"
    );
}

async fn a_waiting_poll_hears_of_a_sign_in_offered_by_another_process(app: TestApp) {
    let (portal, _receiver) = portal(&app).await;
    let mut device = App::registered(&app, &portal, EMAIL).await;
    let (_twin, twin_url) = app.spawn_twin().await;
    device.base_url = twin_url;
    let token = session_token(&app, &portal).await;
    let poll = tokio::spawn(async move { device.signins(Some(20)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let opened = Instant::now();
    open_redirect(&Browser::new(&app), &token).await;
    let answer = poll.await.expect("poll");
    assert_eq!(
        answer.body["data"]["signins"][0]["id"],
        token_id(&token).to_string()
    );
    assert!(
        opened.elapsed() < Duration::from_secs(3),
        "found by the once-a-second look"
    );
}
