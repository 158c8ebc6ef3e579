//! Push approval: `eauth` as a device of the eAuthenticator service. It registers an
//! account's Ed25519 key with a current code, lists the account's pending sign-ins, approves
//! one with the number the browser shows or denies it, and unregisters the device when the
//! account is removed — every request signed as `docs/app-api.md` describes.
//!
//! Blocking HTTP (reqwest's blocking client over rustls with ring): `eauth` does one thing at
//! a time, and a long poll per account runs on a thread of its own.

use std::{fmt, time::Duration};

use eauth_core::{
    ClientId, DeviceId, DeviceKey, Email,
    device::{
        CanonicalRequest, DEVICE_HEADER, NONCE_HEADER, RequestNonce, SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
    },
};
use reqwest::{Method, blocking::Client};
use serde_json::{Value, json};
use url::Url;

/// How long a request may take, beyond the time the service is asked to hold a long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest the service holds a poll (it caps `wait` at this too).
pub const MAX_WAIT_SECS: u64 = 25;

/// Where and as what an account is registered for push approval.
pub struct Device {
    /// The id the service gave the device.
    pub id: DeviceId,
    /// The service's base URL.
    pub server: Url,
    /// The private key its requests are signed with.
    pub key: DeviceKey,
    /// The PEM certificate(s) to trust for the service instead of the system's roots (a dev
    /// server's self-signed certificate).
    pub ca_cert: Option<String>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("server", &self.server.as_str())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A pending sign-in, as the service lists it (never its number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignin {
    /// The sign-in's id.
    pub id: String,
    /// The application being signed in to.
    pub application: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The browser's address.
    pub source_ip: Option<String>,
}

/// Why a request to the service failed. One line each, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// `--server` is not an http(s) URL.
    #[error("--server must be an https:// URL (http:// only for localhost): {0}")]
    ServerUrl(String),
    /// `--ca-cert` cannot be read or holds no certificate.
    #[error("cannot use the certificate {path}: {reason}")]
    CaCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No answer: DNS, connection, TLS or timeout.
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// The service.
        server: String,
        /// Why, in words.
        reason: String,
    },
    /// The service answered with an error code (docs/app-api.md lists them).
    #[error("the service refused: {message} ({code})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The envelope's `code`.
        code: String,
        /// The envelope's `message`.
        message: String,
        /// The envelope's `data`.
        data: Value,
    },
    /// Not the envelope the service answers with.
    #[error("the service's answer is not understood: {0}")]
    Unexpected(String),
}

impl PushError {
    /// The envelope code of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Parses `--server`: absolute http(s), http only for loopback hosts (as the service's own
/// redirect URIs), without credentials, query or fragment.
pub fn parse_server(raw: &str) -> Result<Url, PushError> {
    let refused = || PushError::ServerUrl(raw.to_owned());
    let url = Url::parse(raw.trim()).map_err(|_| refused())?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(refused());
    }
    Ok(url)
}

/// Reads a PEM certificate file for `--ca-cert`.
pub fn read_ca_cert(path: &std::path::Path) -> Result<String, PushError> {
    let fail = |reason: String| PushError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| fail("no PEM certificate in it".into()))?;
    Ok(pem)
}

/// A client of one service.
pub struct Service {
    base: Url,
    client: Client,
}

impl Service {
    /// A client of the service at `base`, trusting only `ca_cert` when given.
    pub fn new(base: &Url, ca_cert: Option<&str>) -> Result<Self, PushError> {
        let mut builder = Client::builder()
            .timeout(REQUEST_TIMEOUT + Duration::from_secs(MAX_WAIT_SECS))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("eauth/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_cert {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| PushError::Unexpected(format!("stored certificate: {e}")))?;
            builder = builder.tls_certs_only(certificates);
        }
        let client = builder
            .build()
            .map_err(|e| PushError::Unexpected(format!("cannot set up HTTPS: {e}")))?;
        Ok(Self {
            base: base.clone(),
            client,
        })
    }

    /// The service of a registered device.
    pub fn of(device: &Device) -> Result<Self, PushError> {
        Self::new(&device.server, device.ca_cert.as_deref())
    }

    /// Sends `method path` with `body`, signed by `key` as `device` at `now`, and returns the
    /// `data` of a SUCCESS envelope.
    fn send(
        &self,
        key: &DeviceKey,
        device: Option<DeviceId>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        now: i64,
    ) -> Result<Value, PushError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let nonce = RequestNonce::generate();
        let signature = CanonicalRequest {
            method: method.as_str(),
            path_and_query: path,
            timestamp: now,
            nonce: &nonce,
            device,
            body: body.as_bytes(),
        }
        .sign(key);
        // The API is at the root of the service's origin; the path is signed as it is sent.
        let url = format!("{}{path}", self.base.origin().ascii_serialization());
        let mut request = self
            .client
            .request(method, url)
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(NONCE_HEADER, nonce.as_str())
            .header(SIGNATURE_HEADER, signature.to_base64url());
        if let Some(id) = device {
            request = request.header(DEVICE_HEADER, id.to_string());
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().map_err(|error| PushError::Unreachable {
            server: self.base.origin().ascii_serialization(),
            reason: describe(error),
        })?;
        let status = response.status().as_u16();
        let envelope: Value = response
            .json()
            .map_err(|e| PushError::Unexpected(format!("HTTP {status}: {e}")))?;
        let code = envelope["code"].as_str().unwrap_or_default();
        if code == "SUCCESS" {
            return Ok(envelope["data"].clone());
        }
        Err(PushError::Refused {
            status,
            code: code.to_owned(),
            message: envelope["message"].as_str().unwrap_or_default().to_owned(),
            data: envelope["data"].clone(),
        })
    }

    /// Registers a new key for the enrollment of `client_id` and `email`, proving it with
    /// `code`; returns the device id.
    pub fn register(
        &self,
        key: &DeviceKey,
        client_id: ClientId,
        email: &Email,
        code: &str,
        name: &str,
        now: i64,
    ) -> Result<DeviceId, PushError> {
        let body = json!({
            "client_id": client_id.to_string(),
            "email": email.as_str(),
            "public_key": key.public_key().to_base64url(),
            "code": code,
            "name": name,
        });
        let data = self.send(
            key,
            None,
            Method::POST,
            "/app-api/v1/devices",
            Some(&body),
            now,
        )?;
        data["device_id"]
            .as_str()
            .and_then(|id| DeviceId::parse(id).ok())
            .ok_or_else(|| PushError::Unexpected("no device_id".into()))
    }

    /// The device's user's pending sign-ins; with `wait`, held up to that many seconds until
    /// there is one.
    pub fn pending(
        &self,
        device: &Device,
        wait: Option<u64>,
        now: i64,
    ) -> Result<Vec<PendingSignin>, PushError> {
        let path = match wait {
            Some(seconds) => format!("/app-api/v1/signins?wait={}", seconds.min(MAX_WAIT_SECS)),
            None => "/app-api/v1/signins".to_owned(),
        };
        let data = self.send(&device.key, Some(device.id), Method::GET, &path, None, now)?;
        let list = data["signins"]
            .as_array()
            .ok_or_else(|| PushError::Unexpected("no signins".into()))?;
        list.iter()
            .map(|item| {
                let signin = || {
                    Some(PendingSignin {
                        id: item["id"].as_str()?.to_owned(),
                        application: item["application"].as_str()?.to_owned(),
                        created_at: item["created_at"].as_i64()?,
                        expires_at: item["expires_at"].as_i64()?,
                        source_ip: item["source_ip"].as_str().map(str::to_owned),
                    })
                };
                signin().ok_or_else(|| PushError::Unexpected(format!("sign-in {item}")))
            })
            .collect()
    }

    /// Approves a sign-in with the number shown in the browser.
    pub fn approve(
        &self,
        device: &Device,
        signin: &str,
        number: u8,
        now: i64,
    ) -> Result<(), PushError> {
        let path = format!("/app-api/v1/signins/{signin}/approve");
        let body = json!({ "number": number });
        self.send(
            &device.key,
            Some(device.id),
            Method::POST,
            &path,
            Some(&body),
            now,
        )
        .map(drop)
    }

    /// Denies a sign-in.
    pub fn deny(&self, device: &Device, signin: &str, now: i64) -> Result<(), PushError> {
        let path = format!("/app-api/v1/signins/{signin}/deny");
        self.send(&device.key, Some(device.id), Method::POST, &path, None, now)
            .map(drop)
    }

    /// Unregisters the device: the service forgets it, and refuses its key from then on.
    pub fn unregister(&self, device: &Device, now: i64) -> Result<(), PushError> {
        self.send(
            &device.key,
            Some(device.id),
            Method::DELETE,
            "/app-api/v1/device",
            None,
            now,
        )
        .map(drop)
    }
}

/// What went wrong with a request, in words (without the URL's details).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        // The innermost cause says whether it was TLS, DNS or a refused connection.
        let mut cause: &dyn std::error::Error = &error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("cannot connect ({cause})")
    } else {
        error.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_loopback_http() {
        for good in [
            "https://eauth.example.com",
            "https://127.0.0.1:8443",
            "http://localhost:8080",
            "http://127.0.0.1:8080/",
            "http://[::1]:8080",
        ] {
            assert!(parse_server(good).is_ok(), "{good}");
        }
        for bad in [
            "eauth.example.com",
            "http://eauth.example.com",
            "ftp://eauth.example.com",
            "https://user:pw@eauth.example.com",
            "https://eauth.example.com/?x=1",
            "https://eauth.example.com/#f",
            "",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
