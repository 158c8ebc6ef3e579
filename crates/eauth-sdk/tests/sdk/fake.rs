//! A scripted stand-in for the service over plain HTTP on loopback: it answers each request
//! with the next scripted reply and records what it received, so that tests can provoke
//! overload, slowness and garbage, and count the attempts.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use eauth_sdk::{Client, Config};
use serde_json::{Value, json};

use crate::support::serve_on_loopback;

/// One scripted answer.
#[derive(Clone)]
pub struct Reply {
    status: StatusCode,
    body: String,
    delay: Duration,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// The guide's envelope with `code`, `message` and `data`.
    pub fn envelope(status: u16, code: &str, message: &str, data: Value) -> Self {
        Self::raw(
            status,
            json!({ "code": code, "message": message, "data": data }).to_string(),
        )
    }

    pub fn success(data: Value) -> Self {
        Self::envelope(200, "SUCCESS", "Success", data)
    }

    /// `OVERLOADED` asking for no wait, so that tests stay fast.
    pub fn overloaded() -> Self {
        Self::envelope(
            503,
            "OVERLOADED",
            "server is overloaded, retry shortly",
            json!(""),
        )
        .header("retry-after", "0")
    }

    pub fn raw(status: u16, body: String) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("status"),
            body,
            delay: Duration::ZERO,
            headers: vec![("content-type", "application/json".into())],
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub api_key: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct FakeService {
    pub address: SocketAddr,
    script: Script,
    _task: tokio::task::JoinHandle<()>,
}

pub const CLIENT_ID: &str = "84c2ad6c-62eb-4217-8f46-a66852e6fe92";
pub const API_KEY: &str = "eak_fake";

impl FakeService {
    /// Serves `replies` in order; past the end, it answers 500 with a note.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let script = Script::default();
        script.replies.lock().expect("lock").extend(replies);
        let app = Router::new().fallback(answer).with_state(script.clone());
        let (address, task) = serve_on_loopback(app).await;
        Self {
            address,
            script,
            _task: task,
        }
    }

    pub fn config(&self) -> Config {
        Config {
            base_url: format!("http://{}", self.address),
            client_id: CLIENT_ID.into(),
            api_key: API_KEY.into(),
            callback_secret: "ecs_fake".into(),
            ..Config::default()
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().expect("lock").clone()
    }
}

async fn answer(
    State(script): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    script.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        api_key: header("x-api-key"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = script.replies.lock().expect("lock").pop_front();
    let Some(reply) = reply else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no more scripted replies",
        )
            .into_response();
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (reply.status, reply.body).into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}
