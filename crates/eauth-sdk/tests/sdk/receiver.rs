//! The portal's callback endpoint, as a test stands it up: plain HTTP on loopback (the service
//! allows http callback URLs to loopback addresses), recording each callback's raw query
//! string for the test to verify with the SDK.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::RawQuery, routing::get};

use crate::support::serve_on_loopback;

pub struct CallbackReceiver {
    pub address: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl CallbackReceiver {
    pub async fn start() -> Self {
        let queries = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&queries);
        let app = Router::new().route(
            "/eauth/callback",
            get(move |RawQuery(query): RawQuery| async move {
                recorded
                    .lock()
                    .expect("lock")
                    .push(query.unwrap_or_default());
                "ok"
            }),
        );
        let (address, task) = serve_on_loopback(app).await;
        Self {
            address,
            queries,
            _task: task,
        }
    }

    /// The URL to register, with `query` (without `?`) of its own if not empty.
    pub fn url(&self, query: &str) -> String {
        let base = format!("http://{}/eauth/callback", self.address);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }

    /// The raw query string of the first callback, waiting up to 10 s for it.
    pub async fn first(&self) -> String {
        for _ in 0..100 {
            if let Some(query) = self.queries.lock().expect("lock").first() {
                return query.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no callback within 10 s");
    }
}
