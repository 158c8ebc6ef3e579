//! A portal backend's callback endpoint for tests: records every call, answers with a status
//! the test chooses, and checks signatures the way the README tells integrators to.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::Query, http::StatusCode, routing::get};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

/// One call the service made.
#[derive(Debug, Clone)]
pub struct Call {
    pub query: HashMap<String, String>,
}

impl Call {
    pub fn result(&self) -> &str {
        &self.query["result"]
    }

    pub fn session_token(&self) -> &str {
        &self.query["session_token"]
    }

    /// Whether the signature is HMAC-SHA256(secret, "{timestamp}.{result}.{session_token}").
    pub fn is_signed_with(&self, secret: &str) -> bool {
        let (Some(timestamp), Some(signature)) =
            (self.query.get("timestamp"), self.query.get("signature"))
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{timestamp}.{}.{}", self.result(), self.session_token()).as_bytes());
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        mac.verify_slice(&signature).is_ok()
    }
}

pub struct Receiver {
    pub url: String,
    calls: mpsc::UnboundedReceiver<Call>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    /// Listens on a free loopback port; answers 200 until told otherwise.
    pub async fn start() -> Self {
        let (sender, calls) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        let app = Router::new().route(
            "/cb",
            get(move |Query(query): Query<HashMap<String, String>>| {
                let sender = sender.clone();
                let answer = answer.clone();
                async move {
                    let _ = sender.send(Call { query });
                    StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://127.0.0.1:{}/cb", address.port()),
            calls,
            status,
        }
    }

    /// From now on, answer with `status`.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The next call, waiting at most `within`.
    pub async fn next_within(&mut self, within: Duration) -> Call {
        tokio::time::timeout(within, self.calls.recv())
            .await
            .expect("a callback within the time allowed")
            .expect("receiver open")
    }

    /// A call that has already arrived, if any.
    pub fn already_received(&mut self) -> Option<Call> {
        self.calls.try_recv().ok()
    }
}
