//! Assembling and running the service: the router with its middleware, the HTTPS listener
//! and graceful shutdown.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
};
use axum_server::{Handle, tls_rustls::RustlsConfig};
use eauth_core::Vault;
use eauth_store::Store;
use tokio::task::JoinHandle;
use tower_http::{set_header::SetResponseHeaderLayer, trace::TraceLayer};
use url::Url;

use crate::{
    api::{self, LoggedCause},
    app_api::{self, PushSignals},
    bootstrap,
    config::Settings,
    console, health,
    state::{AppState, Clock, Shared, load_session_keyring},
    webview, worker,
};

/// How long in-flight requests get to finish after a shutdown signal.
const GRACE_PERIOD: Duration = Duration::from_secs(20);

/// Opens the database and the vault, as `serve` and `admin` both need them.
pub async fn open_storage(settings: &Settings) -> anyhow::Result<(Store, Vault)> {
    bootstrap::ensure_data_dir(settings)?;
    let master_key = bootstrap::master_key(settings)?;
    let url = settings.database_url();
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    Ok((store, Vault::new(&master_key)))
}

/// The database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Every route of the service, with its middleware.
pub fn app(state: AppState, max_concurrent_requests: usize) -> Router {
    let hsts = strict_transport_security(&state.public_url);
    let router = Router::new()
        .merge(api::router(max_concurrent_requests))
        .merge(app_api::router(max_concurrent_requests))
        .merge(health::router())
        .merge(webview::router())
        .merge(console::router())
        .with_state(state)
        .layer(middleware::from_fn(log_failures))
        // Tokens travel in bodies and, for the sign-in page, in URLs: nothing may be cached.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // A span per request costs a tenth of a short request's time (its fields formatted,
        // eauth-bench with EAUTH_LOG=warn against info): for debugging only. Failures and
        // outcomes are logged at info and above with what they need to be understood.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // The path only: query strings carry session tokens.
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }));
    match hsts {
        Some(value) => router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            value,
        )),
        None => router,
    }
}

/// `Strict-Transport-Security` for a service whose public URL is https on a name: browsers
/// then never send a session token over plain HTTP to it, not even when a link says http.
/// Not for `localhost` (browsers apply it to the host whatever the port, so every plain-HTTP
/// development server there, the demo's portal among them, would stop loading) nor for an
/// address (browsers ignore it there).
fn strict_transport_security(public_url: &Url) -> Option<HeaderValue> {
    let name = match public_url.host() {
        Some(url::Host::Domain(name)) if public_url.scheme() == "https" => name,
        _ => return None,
    };
    if eauth_core::address::is_localhost(name) {
        return None;
    }
    // A year, as browsers' preload lists ask; not for subdomains, which may be others' services.
    Some(HeaderValue::from_static("max-age=31536000"))
}

/// Logs the internal cause behind a failed response; the response itself carries none.
async fn log_failures(request: Request, next: Next) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
        // The path only: query strings carry session tokens.
        tracing::error!(%method, path = uri.path(), status = %response.status(), error = ?cause, "request failed");
    }
    response
}

/// A running service.
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// The base URL browsers and integrators use.
    pub public_url: Url,
    /// Where the data lives, for the start-up line.
    pub database_url: String,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    stop_worker: tokio::sync::watch::Sender<bool>,
    store: Store,
}

impl RunningServer {
    /// Binds, loads everything and starts serving in the background.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let (store, vault) = open_storage(settings).await?;
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let scheme = if settings.insecure_http {
            "http"
        } else {
            "https"
        };
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("{scheme}://{local_addr}")).context("public URL")?,
        };
        let clock = Clock::system();
        let keyring = load_session_keyring(&store, &vault, &public_url, clock.now()).await?;
        let state = AppState::new(Shared {
            store: store.clone(),
            vault,
            keyring,
            public_url: public_url.clone(),
            session_ttl_secs: i64::from(settings.session_ttl_secs),
            trusted_proxies: settings.trusted_proxies.clone(),
            clock,
            wakeup: worker::Wakeup::default(),
            callbacks: worker::callbacks_client(settings.private_callbacks),
            push: PushSignals::default(),
        });
        let service = app(state.clone(), settings.max_concurrent_requests)
            .into_make_service_with_connect_info::<SocketAddr>();
        let handle = Handle::new();
        let task = if settings.insecure_http {
            tracing::warn!(
                "insecure_http is on: serving plain HTTP. Only do this behind a proxy that terminates \
                 TLS, and list it in trusted_proxies"
            );
            tokio::spawn(
                axum_server::from_tcp(listener)?
                    .handle(handle.clone())
                    .serve(service),
            )
        } else {
            let (cert, key) = bootstrap::tls_files(settings)?;
            let tls = RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?;
            tokio::spawn(
                axum_server::from_tcp_rustls(listener, tls)?
                    .handle(handle.clone())
                    .serve(service),
            )
        };
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(worker::run(state, worker_stopped));
        Ok(Self {
            local_addr,
            public_url,
            database_url: redact_url(&settings.database_url()),
            handle,
            task,
            worker,
            stop_worker,
            store,
        })
    }

    /// Stops accepting connections, lets in-flight requests finish (up to a grace period),
    /// then closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(GRACE_PERIOD));
        let served = self.task.await.context("server task panicked")?;
        // Pending callbacks stay in the outbox for the next start.
        let _ = self.stop_worker.send(true);
        self.worker.await.context("callback worker panicked")?;
        self.store.close().await;
        served.context("server failed")
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
