//! What the store reads and writes, in domain types, and the raw rows they come from.
//!
//! Rows are parsed back into domain types on the way out: a value that no longer parses is
//! reported as corruption, never passed on unchecked.

use eauth_core::{
    Algorithm, ApiKeyHash, ApplicationName, CallbackUrl, ClientId, Email, IpAllowList, MatchNumber,
    RedirectUri, SessionClaims, SessionStatus, TotpParams,
    signin::{AttemptState, Verdict},
};
use uuid::Uuid;

use crate::StoreError;

/// A registered application.
#[derive(Debug, Clone)]
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
    /// The version of the application this copy is.
    pub revision: Revision,
}

/// Which version of an application a copy is: every change to the application makes a new
/// one, and a revision once left never comes back. A write made on behalf of a copy names its
/// revision, and the store refuses it with [`StoreError::ApplicationChanged`] unless it is
/// still the application's (see [`Store::application_copy`](crate::Store::application_copy)).
/// A new application starts at the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revision(pub(crate) i64);

row! {
    pub(crate) struct ApplicationRow {
        pub(crate) client_id: String,
        name: String,
        owner_email: Option<String>,
        ip_allow_list: String,
        redirect_uris: String,
        callback_url: String,
        api_key_hash: Vec<u8>,
        sealed_callback_secret: Vec<u8>,
        active: bool,
        created_at: i64,
        revision: i64,
    }
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
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
            revision: Revision(row.revision),
        })
    }
}

/// A TOTP enrollment to store.
#[derive(Debug, Clone)]
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

/// A user's TOTP enrollment and its verification state. Its secret is sealed, so copies
/// of it hold no more than the database does.
#[derive(Debug, Clone)]
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
    /// Unix seconds of the last wrong code.
    pub last_failure_at: Option<i64>,
    /// Unix seconds at which too many failures locked it.
    pub locked_at: Option<i64>,
    /// Unix seconds.
    pub enabled_at: i64,
    /// Unix seconds of the last approved sign-in.
    pub last_approved_at: Option<i64>,
}

impl Enrollment {
    /// Applies what a code's verdict does to the enrollment at `now`: a right code marks its
    /// step used and clears the failures; a wrong one counts a failure and may lock it.
    /// Returns whether anything changed.
    pub(crate) fn apply(&mut self, verdict: Verdict, now: i64) -> bool {
        match verdict {
            Verdict::Approved { step } => {
                self.last_used_step = Some(step);
                self.consecutive_failures = 0;
                self.last_failure_at = None;
                self.last_approved_at = Some(now);
                true
            }
            Verdict::Wrong { locked, .. } | Verdict::Exhausted { locked } => {
                self.consecutive_failures += 1;
                self.last_failure_at = Some(now);
                if locked {
                    self.locked_at = Some(now);
                }
                true
            }
            Verdict::Throttled { .. } | Verdict::Locked => false,
        }
    }

    /// What the attempt rules need, with the session's own failures.
    pub fn attempt_state(&self, session_failures: u32) -> AttemptState {
        AttemptState {
            session_failures,
            enrollment_failures: self.consecutive_failures,
            last_failure_at: self.last_failure_at,
            locked: self.locked_at.is_some(),
            last_used_step: self.last_used_step,
        }
    }
}

row! {
    pub(crate) struct EnrollmentRow {
        pub(crate) client_id: String,
        pub(crate) email: String,
        sealed_secret: Vec<u8>,
        algorithm: String,
        digits: i32,
        period: i32,
        last_used_step: Option<i64>,
        consecutive_failures: i32,
        last_failure_at: Option<i64>,
        locked_at: Option<i64>,
        enabled_at: i64,
        last_approved_at: Option<i64>,
    }
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
            last_failure_at: row.last_failure_at,
            locked_at: row.locked_at,
            enabled_at: row.enabled_at,
            last_approved_at: row.last_approved_at,
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
    /// Wrong codes so far.
    pub failed_attempts: u32,
    /// `redirect` or `popup`, once the sign-in page was opened.
    pub signin_method: Option<String>,
    /// The browser's address when it first opened the sign-in page.
    pub source_ip: Option<String>,
    /// The number the sign-in page shows for push approval, once it showed one.
    pub push_number: Option<MatchNumber>,
    /// Wrong numbers the app sent so far.
    pub push_failures: u32,
}

impl Session {
    /// Counts a code's verdict against the session: a wrong code is one failed attempt.
    /// Returns how the verdict ends the session, if it does.
    pub(crate) fn apply(&mut self, verdict: Verdict) -> Option<SessionStatus> {
        if verdict.is_failure() {
            self.failed_attempts += 1;
        }
        match verdict {
            Verdict::Approved { .. } => Some(SessionStatus::Approved),
            Verdict::Exhausted { .. } | Verdict::Wrong { locked: true, .. } => {
                Some(SessionStatus::Rejected)
            }
            // A locked enrollment cannot finish this sign-in any other way.
            Verdict::Locked => Some(SessionStatus::Rejected),
            Verdict::Wrong { locked: false, .. } | Verdict::Throttled { .. } => None,
        }
    }

    /// A new pending session.
    pub fn pending(
        id: Uuid,
        client_id: ClientId,
        email: Email,
        created_at: i64,
        expires_at: i64,
    ) -> Self {
        Self {
            id,
            client_id,
            email,
            status: SessionStatus::Pending,
            created_at,
            expires_at,
            finished_at: None,
            failed_attempts: 0,
            signin_method: None,
            source_ip: None,
            push_number: None,
            push_failures: 0,
        }
    }

    /// The claims of its session token.
    pub fn claims(&self) -> SessionClaims {
        SessionClaims {
            id: self.id,
            email: self.email.clone(),
            client_id: self.client_id,
            issued_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

row! {
    pub(crate) struct SessionRow {
        pub(crate) id: String,
        pub(crate) client_id: String,
        email: String,
        status: String,
        created_at: i64,
        expires_at: i64,
        finished_at: Option<i64>,
        failed_attempts: i32,
        signin_method: Option<String>,
        source_ip: Option<String>,
        push_number: Option<i32>,
        push_failures: i32,
    }
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
            failed_attempts: u32::try_from(row.failed_attempts)
                .map_err(|e| corrupt("failed_attempts", e))?,
            signin_method: row.signin_method,
            source_ip: row.source_ip,
            push_number: row
                .push_number
                .map(|n| MatchNumber::new(n.into()).ok_or_else(|| corrupt("push_number", n)))
                .transpose()?,
            push_failures: u32::try_from(row.push_failures)
                .map_err(|e| corrupt("push_failures", e))?,
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

row! {
    pub(crate) struct StoredSessionKeyRow {
        kid: String,
        sealed_secret: Vec<u8>,
    }
}

impl From<StoredSessionKeyRow> for StoredSessionKey {
    fn from(row: StoredSessionKeyRow) -> Self {
        Self {
            kid: row.kid,
            sealed_secret: row.sealed_secret,
        }
    }
}

/// Where a callback delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStatus {
    /// Not delivered yet; retried until it is, or until it is a day old.
    Pending,
    /// The callback URL answered 2xx.
    Delivered,
    /// Given up after a day of failures.
    Failed,
}

impl CallbackStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A finished session's callback to its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// Its id.
    pub id: Uuid,
    /// The session it reports.
    pub session_id: Uuid,
    /// The application to call.
    pub client_id: ClientId,
    /// `result=true` or `false`.
    pub approved: bool,
    /// The session's token, as the guide's callback carries it.
    pub session_token: String,
    /// Where delivery stands.
    pub status: CallbackStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Unix seconds; when the next attempt is due.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub delivered_at: Option<i64>,
}

impl Callback {
    /// The callback of `session`, which has just finished, due at `now`. With a `lease`
    /// (Unix seconds) it is written claimed by its writer until then, that first attempt
    /// counted.
    pub(crate) fn new(
        session: &Session,
        session_token: String,
        now: i64,
        lease: Option<i64>,
    ) -> Self {
        Self {
            // Time-ordered: the outbox's index grows at its end.
            id: Uuid::now_v7(),
            session_id: session.id,
            client_id: session.client_id,
            approved: session.status == SessionStatus::Approved,
            session_token,
            status: CallbackStatus::Pending,
            attempts: u32::from(lease.is_some()),
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            delivered_at: None,
        }
    }
}

row! {
    pub(crate) struct CallbackRow {
        id: String,
        session_id: String,
        client_id: String,
        approved: bool,
        session_token: String,
        status: String,
        attempts: i32,
        next_attempt_at: i64,
        last_error: Option<String>,
        created_at: i64,
        delivered_at: Option<i64>,
    }
}

impl TryFrom<CallbackRow> for Callback {
    type Error = StoreError;

    fn try_from(row: CallbackRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: Uuid::parse_str(&row.id).map_err(|e| corrupt("callback id", e))?,
            session_id: Uuid::parse_str(&row.session_id).map_err(|e| corrupt("session id", e))?,
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e))?,
            approved: row.approved,
            session_token: row.session_token,
            status: CallbackStatus::parse(&row.status)
                .ok_or_else(|| corrupt("callback status", &row.status))?,
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("attempts", e))?,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        })
    }
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// 2xx.
    Delivered,
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// Unix seconds.
        next_attempt_at: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time.
    GaveUp {
        /// Why it failed.
        error: String,
    },
}
