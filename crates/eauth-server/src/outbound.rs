//! The service's own requests: the callbacks, to URLs that integrators choose.
//!
//! Whoever registers an application chooses where the service sends requests from inside its
//! network. Without a rule, a callback URL could make the service call what only it can reach:
//! an admin page on the private network, the cloud's metadata address (server-side request
//! forgery; the signed query the service appends would not stop a GET from doing harm). So
//! unless the operator allows private networks (`private_callbacks`: development, or portals
//! on the operator's own network), a callback goes only to public addresses. Checked when
//! connecting, on every address the name resolves to: a name that resolved to a public
//! address when it was registered may resolve to a private one now. (Registration refuses
//! early what is plainly private, see [`is_plainly_private`].) An egress proxy (`HTTPS_PROXY`),
//! if set, resolves names itself, and its own rules apply.

use std::{net::SocketAddr, time::Duration};

use eauth_core::address::{is_plainly_private, is_public};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// Why a callback request failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Its host is not a public address.
    #[error(
        "the callback URL's host is not a public address (loopback, private network, link-local \
         or reserved); the service calls private networks only when its private_callbacks \
         setting is on"
    )]
    NotPublic,
    /// The request itself failed.
    #[error(transparent)]
    Request(reqwest::Error),
}

/// The client that sends callbacks, under the rule above.
#[derive(Clone)]
pub struct Callbacks {
    client: reqwest::Client,
    private_allowed: bool,
}

impl Callbacks {
    /// No redirects (a 3xx is not a delivery, and following one would let a callback URL point
    /// the service elsewhere), a `timeout` per request; public addresses only unless
    /// `private_allowed`.
    pub fn new(timeout: Duration, private_allowed: bool) -> Self {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("eAuthenticator/", env!("CARGO_PKG_VERSION")));
        let builder = if private_allowed {
            builder
        } else {
            builder.dns_resolver(PublicOnly)
        };
        Self {
            client: builder
                .build()
                .expect("BUG: a client with static settings builds"),
            private_allowed,
        }
    }

    /// Whether callbacks may go to private networks (the `private_callbacks` setting).
    pub fn private_allowed(&self) -> bool {
        self.private_allowed
    }

    /// GETs `url`, if the rule allows its host.
    pub async fn get(&self, url: Url) -> Result<reqwest::Response, CallError> {
        // The resolver never sees an address written in the URL: it is checked here.
        if !self.private_allowed && is_plainly_private(&url) {
            return Err(CallError::NotPublic);
        }
        self.client.get(url).send().await.map_err(|error| {
            if refused_by_resolver(&error) {
                CallError::NotPublic
            } else {
                CallError::Request(error)
            }
        })
    }
}

/// What [`PublicOnly`] fails with, to be found again among the sources of reqwest's error.
#[derive(Debug, thiserror::Error)]
#[error("resolves to no public address")]
struct NoPublicAddress;

fn refused_by_resolver(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<NoPublicAddress>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Resolves names as the system does, then keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(NoPublicAddress.into());
            }
            let addresses: Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_resolver_keeps_only_public_addresses() {
        let resolved = PublicOnly
            .resolve("localhost".parse().expect("a name"))
            .await;
        assert!(
            resolved.is_err_and(|error| error.is::<NoPublicAddress>()),
            "localhost resolved to a public address"
        );
    }

    #[tokio::test]
    async fn a_name_or_an_address_of_a_private_network_is_refused_before_any_connection() {
        // The binary installs it at start.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A listener on loopback, asked without waiting whether anyone connected.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let callbacks = Callbacks::new(Duration::from_secs(5), false);
        let mut urls = vec![
            format!("http://127.0.0.1:{port}/callback"),
            format!("http://localhost:{port}/callback"),
            format!("http://[::ffff:127.0.0.1]:{port}/callback"),
        ];
        // A name that is not plainly private goes to the resolver: the machine's own name,
        // where it resolves to loopback (here and in CI: /etc/hosts).
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let hostname = hostname.trim();
        let to_loopback = tokio::net::lookup_host((hostname, 0))
            .await
            .is_ok_and(|mut found| found.all(|address| address.ip().is_loopback()));
        if to_loopback {
            urls.push(format!("http://{hostname}:{port}/callback"));
        } else {
            // Test output, read by whoever runs the tests.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{hostname:?} does not resolve to loopback: its case is left out");
            }
        }
        for url in urls {
            let refused = callbacks.get(url.parse().expect("URL")).await;
            assert!(
                matches!(refused, Err(CallError::NotPublic)),
                "{url}: {refused:?}"
            );
        }
        // The kernel completes a connection before it is accepted: one made above would be here.
        let accepted = listener.accept();
        assert!(
            accepted
                .as_ref()
                .is_err_and(|error| error.kind() == std::io::ErrorKind::WouldBlock),
            "the service connected to a private address: {accepted:?}"
        );
        // Allowed, the same URL reaches the listener.
        let allowed = Callbacks::new(Duration::from_secs(5), true);
        let url: Url = format!("http://localhost:{port}/callback")
            .parse()
            .expect("URL");
        let call = tokio::spawn(async move { allowed.get(url).await });
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let (stream, _) = listener.accept().await.expect("a connection");
        drop(stream);
        let _ = call.await;
    }
}
