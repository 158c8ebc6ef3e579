//! Signed requests: every app request carries its device's Ed25519 signature over method,
//! path with query, timestamp, nonce, device and body hash (`eauth_core::device`), and is
//! refused when unsigned, wrongly signed, stale or replayed.
//!
//! Checks run cheapest first, and the nonce is recorded only once the signature verifies, so
//! unsigned traffic writes nothing. The nonce's primary key in the database, not a check
//! before an insert, refuses a replay, also when it reaches another process.

use axum::{
    body::Bytes,
    extract::{FromRequest, OriginalUri, Request},
    http::{HeaderMap, Method},
};
use eauth_core::{
    DeviceId, DevicePublicKey,
    device::{
        self, CanonicalRequest, DEVICE_HEADER, DeviceSignature, NONCE_HEADER, RequestNonce,
        SIGNATURE_HEADER, TIMESTAMP_HEADER,
    },
};
use eauth_store::Device;
use serde::de::DeserializeOwned;

use super::error::AppApiError;
use crate::state::AppState;

/// Bodies beyond this are refused unread.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request with well-formed signature headers, not yet verified.
pub(crate) struct SignedRequest {
    method: Method,
    path_and_query: String,
    device: Option<DeviceId>,
    timestamp: i64,
    nonce: RequestNonce,
    signature: DeviceSignature,
    body: Bytes,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AppApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| AppApiError::Unsigned(format!("the {name} header is not text")))
        })
        .transpose()
}

fn required<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AppApiError> {
    header(headers, name)?
        .ok_or_else(|| AppApiError::Unsigned(format!("the {name} header is missing")))
}

fn malformed(name: &str) -> AppApiError {
    AppApiError::Unsigned(format!("the {name} header is malformed"))
}

impl<S: Send + Sync> FromRequest<S> for SignedRequest {
    type Rejection = AppApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, AppApiError> {
        let headers = request.headers();
        let timestamp = required(headers, TIMESTAMP_HEADER)?
            .parse()
            .map_err(|_| malformed(TIMESTAMP_HEADER))?;
        let nonce = RequestNonce::parse(required(headers, NONCE_HEADER)?)
            .map_err(|_| malformed(NONCE_HEADER))?;
        let signature = DeviceSignature::parse(required(headers, SIGNATURE_HEADER)?)
            .map_err(|_| malformed(SIGNATURE_HEADER))?;
        let device = header(headers, DEVICE_HEADER)?
            .map(|raw| DeviceId::parse(raw).map_err(|_| malformed(DEVICE_HEADER)))
            .transpose()?;
        let method = request.method().clone();
        // As the client sent it: `nest` strips its prefix from the URI the router sees.
        let uri = request
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| request.uri().clone(), |OriginalUri(uri)| uri.clone());
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string);
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| AppApiError::PayloadTooLarge)?;
        Ok(Self {
            method,
            path_and_query,
            device,
            timestamp,
            nonce,
            signature,
            body,
        })
    }
}

impl SignedRequest {
    /// Verifies a request of a registered device: fresh, signed by the key of the device it
    /// names, with a nonce not used before. Returns the device and the body.
    pub(crate) async fn by_device(self, state: &AppState) -> Result<(Device, Bytes), AppApiError> {
        self.check_fresh(state)?;
        let id = self.device.ok_or_else(|| {
            AppApiError::Unsigned(format!("the {DEVICE_HEADER} header is missing"))
        })?;
        let device = state
            .store
            .device(id)
            .await?
            .ok_or(AppApiError::UnknownDevice)?;
        tracing::Span::current().record("client_id", tracing::field::display(device.client_id));
        self.check_signature(state, &device.public_key, &id.to_string())
            .await?;
        Ok((device, self.body))
    }

    /// Verifies a registration: fresh, signed by the key being registered (proof that the app
    /// holds it), with a nonce not used before, and naming no device.
    pub(crate) async fn by_new_key(
        &self,
        state: &AppState,
        key: &DevicePublicKey,
    ) -> Result<(), AppApiError> {
        self.check_fresh(state)?;
        if self.device.is_some() {
            return Err(AppApiError::InvalidRequest(format!(
                "a registration names no device: leave out {DEVICE_HEADER}"
            )));
        }
        self.check_signature(state, key, &key.to_base64url()).await
    }

    /// The body, once verified.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    fn check_fresh(&self, state: &AppState) -> Result<(), AppApiError> {
        if device::is_fresh(self.timestamp, state.clock.now()) {
            Ok(())
        } else {
            Err(AppApiError::Stale)
        }
    }

    async fn check_signature(
        &self,
        state: &AppState,
        key: &DevicePublicKey,
        signer: &str,
    ) -> Result<(), AppApiError> {
        let canonical = CanonicalRequest {
            method: self.method.as_str(),
            path_and_query: &self.path_and_query,
            timestamp: self.timestamp,
            nonce: &self.nonce,
            device: self.device,
            body: &self.body,
        };
        if !canonical.is_signed_by(key, &self.signature) {
            return Err(AppApiError::BadSignature);
        }
        let expires_at = device::nonce_expires_at(self.timestamp);
        if state
            .store
            .remember_nonce(signer, self.nonce.as_str(), expires_at)
            .await?
        {
            Ok(())
        } else {
            Err(AppApiError::Replayed)
        }
    }
}

/// The JSON body of a verified request; an empty body reads as `null`.
pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppApiError> {
    let body = if body.is_empty() { b"null" } else { body };
    serde_json::from_slice(body)
        .map_err(|error| AppApiError::InvalidRequest(format!("invalid JSON body: {error}")))
}
