//! `/healthz` and `/readyz`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{backend_tests, helpers::TestApp};

backend_tests!(probes_answer_json);

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
