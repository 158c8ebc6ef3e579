//! `/healthz` and `/readyz`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{backend_tests, helpers::TestApp};

backend_tests!(probes_answer_json);

#[tokio::test]
async fn browsers_are_told_to_use_https_only_for_a_public_name() {
    let strict = |public_url: &'static str| async move {
        let app = crate::helpers::spawn_app_with(eauth_store::testing::Backend::Sqlite, |s| {
            s.public_url = Some(public_url.parse().expect("URL"));
        })
        .await
        .expect("sqlite");
        let response = app
            .client
            .get(format!("{}/healthz", app.base_url))
            .send()
            .await
            .expect("request");
        response
            .headers()
            .get("strict-transport-security")
            .map(|value| value.to_str().expect("ASCII").to_owned())
    };
    assert_eq!(
        strict("https://eauth.example.com").await.as_deref(),
        Some("max-age=31536000")
    );
    // Browsers would apply it to every port of localhost; they ignore it for addresses.
    for public_url in [
        "https://localhost:8443",
        "https://127.0.0.1:8443",
        "https://[::1]:8443",
    ] {
        assert_eq!(strict(public_url).await, None, "{public_url}");
    }
}

async fn probes_answer_json(app: TestApp) {
    for (path, expected) in [
        ("/healthz", json!({ "status": "ok" })),
        ("/readyz", json!({ "status": "ready" })),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.json::<Value>().await.expect("JSON"),
            expected,
            "{path}"
        );
    }
}
