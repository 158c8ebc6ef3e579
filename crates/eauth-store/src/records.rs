//! What the store reads and writes, in domain types, and the raw rows they come from.
//!
//! Rows are parsed back into domain types on the way out: a value that no longer parses is
//! reported as corruption, never passed on unchecked.

use eauth_core::{
    Algorithm, ApiKeyHash, ApplicationName, CallbackUrl, ClientId, Email, IpAllowList, RedirectUri,
    SessionStatus, TotpParams,
};
use uuid::Uuid;

use crate::StoreError;

/// A registered application.
#[derive(Debug)]
pub struct Application {
    /// Its id.
    pub client_id: ClientId,
    /// Shown to users.
    pub name: ApplicationName,
    /// The console account that owns it, if any.
    pub owner: Option<Email>,
    /// Addresses its backend calls from.
    pub ip_allow_list: IpAllowList,
    /// Where the sign-in page may send browsers back to.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where sign-in results are delivered.
    pub callback_url: CallbackUrl,
    /// Hash of its API key.
    pub api_key_hash: ApiKeyHash,
    /// Its callback secret, sealed by the vault.
    pub sealed_callback_secret: Vec<u8>,
    /// Inactive applications are refused with INACTIVE.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApplicationRow {
    client_id: String,
    name: String,
    owner_email: Option<String>,
    ip_allow_list: String,
    redirect_uris: String,
    callback_url: String,
    api_key_hash: Vec<u8>,
    sealed_callback_secret: Vec<u8>,
    active: bool,
    created_at: i64,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn json_list(what: &str, raw: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(what, e))
}

impl TryFrom<ApplicationRow> for Application {
    type Error = StoreError;

    fn try_from(row: ApplicationRow) -> Result<Self, StoreError> {
        let ips = json_list("ip_allow_list", &row.ip_allow_list)?;
        let redirect_uris = json_list("redirect_uris", &row.redirect_uris)?
            .iter()
            .map(|uri| RedirectUri::parse(uri).map_err(|e| corrupt("redirect_uris", e)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e))?,
            name: ApplicationName::parse(&row.name).map_err(|e| corrupt("name", e))?,
            owner: row
                .owner_email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt("owner_email", e))?,
            ip_allow_list: IpAllowList::parse(ips.iter().map(String::as_str))
                .map_err(|e| corrupt("ip_allow_list", e))?,
            redirect_uris,
            callback_url: CallbackUrl::parse(&row.callback_url)
                .map_err(|e| corrupt("callback_url", e))?,
            api_key_hash: ApiKeyHash::from_bytes(&row.api_key_hash)
                .ok_or_else(|| corrupt("api_key_hash", "not 32 bytes"))?,
            sealed_callback_secret: row.sealed_callback_secret,
            active: row.active,
            created_at: row.created_at,
        })
    }
}

/// A TOTP enrollment to store.
#[derive(Debug)]
pub struct NewEnrollment {
    /// The application.
    pub client_id: ClientId,
    /// The user.
    pub email: Email,
    /// The TOTP secret, sealed by the vault.
    pub sealed_secret: Vec<u8>,
    /// How codes are made.
    pub params: TotpParams,
}

/// A user's TOTP enrollment and its verification state.
#[derive(Debug)]
pub struct Enrollment {
    /// The application.
    pub client_id: ClientId,
    /// The user.
    pub email: Email,
    /// The TOTP secret, sealed by the vault.
    pub sealed_secret: Vec<u8>,
    /// How codes are made.
    pub params: TotpParams,
    /// The last accepted time step (RFC 6238 §5.2).
    pub last_used_step: Option<u64>,
    /// Wrong codes since the last success.
    pub consecutive_failures: u32,
    /// Unix seconds at which too many failures locked it.
    pub locked_at: Option<i64>,
    /// Unix seconds.
    pub enabled_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct EnrollmentRow {
    client_id: String,
    email: String,
    sealed_secret: Vec<u8>,
    algorithm: String,
    digits: i32,
    period: i32,
    last_used_step: Option<i64>,
    consecutive_failures: i32,
    locked_at: Option<i64>,
    enabled_at: i64,
}

impl TryFrom<EnrollmentRow> for Enrollment {
    type Error = StoreError;

    fn try_from(row: EnrollmentRow) -> Result<Self, StoreError> {
        let algorithm =
            Algorithm::parse(&row.algorithm).ok_or_else(|| corrupt("algorithm", &row.algorithm))?;
        Ok(Self {
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e))?,
            email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            sealed_secret: row.sealed_secret,
            params: TotpParams::new(algorithm, row.digits.into(), row.period.into())
                .map_err(|e| corrupt("totp parameters", e))?,
            last_used_step: row
                .last_used_step
                .map(u64::try_from)
                .transpose()
                .map_err(|e| corrupt("last_used_step", e))?,
            consecutive_failures: u32::try_from(row.consecutive_failures)
                .map_err(|e| corrupt("consecutive_failures", e))?,
            locked_at: row.locked_at,
            enabled_at: row.enabled_at,
        })
    }
}

/// A sign-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The token's `jti`.
    pub id: Uuid,
    /// The application.
    pub client_id: ClientId,
    /// The user.
    pub email: Email,
    /// Where it stands.
    pub status: SessionStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once it is no longer pending.
    pub finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    client_id: String,
    email: String,
    status: String,
    created_at: i64,
    expires_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: Uuid::parse_str(&row.id).map_err(|e| corrupt("session id", e))?,
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e))?,
            email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            status: SessionStatus::parse(&row.status)
                .ok_or_else(|| corrupt("status", &row.status))?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            finished_at: row.finished_at,
        })
    }
}

/// The session-signing key as stored: its id and its sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSessionKey {
    /// The `kid`.
    pub kid: String,
    /// The HMAC key, sealed by the vault.
    pub sealed_secret: Vec<u8>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct StoredSessionKeyRow {
    kid: String,
    sealed_secret: Vec<u8>,
}

impl From<StoredSessionKeyRow> for StoredSessionKey {
    fn from(row: StoredSessionKeyRow) -> Self {
        Self {
            kid: row.kid,
            sealed_secret: row.sealed_secret,
        }
    }
}
