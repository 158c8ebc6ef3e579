//! Push approval's storage: the app's registered devices, the nonces of their signed requests,
//! the number a pending sign-in shows, and what an approval or a denial does to a sign-in.
//!
//! Registration and decisions run like [`Store::attempt`]: the rows they depend on are locked,
//! a pure rule of `eauth-core` judges what was read, and the verdict is written in the same
//! transaction, so concurrent requests from any process are judged one after the other.

use eauth_core::{
    ApplicationName, ClientId, DeviceId, DeviceName, DevicePublicKey, Email, MatchNumber,
    SessionStatus, VaultError,
    device_registration::{self, FailureWindow, ThrottleKeys},
    push::PushVerdict,
};
use uuid::Uuid;

use crate::{
    Callback, Dialect, Enrollment, Pool, Result, Session, Store, StoreError, finish_noted,
    locked_enrollment, locked_session, numbered, records::corrupt,
};

/// Users per statement of [`Store::devices_of_users`]: far below both drivers' parameter
/// limits; the console asks for a page of 25.
const USERS_PER_STATEMENT: usize = 500;

/// A registered device of the eAuthenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id, named in every request it signs.
    pub id: DeviceId,
    /// The application of its enrollment.
    pub client_id: ClientId,
    /// The user of its enrollment.
    pub email: Email,
    /// The key its requests are signed with.
    pub public_key: DevicePublicKey,
    /// What the user calls it.
    pub name: DeviceName,
    /// Unix seconds.
    pub created_at: i64,
}

row! {
    pub(crate) struct DeviceRow {
        id: String,
        pub(crate) client_id: String,
        pub(crate) email: String,
        public_key: Vec<u8>,
        name: String,
        created_at: i64,
    }
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;

    fn try_from(row: DeviceRow) -> Result<Self> {
        Ok(Self {
            id: DeviceId::parse(&row.id).map_err(|e| corrupt("device id", e))?,
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e))?,
            email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            public_key: DevicePublicKey::from_bytes(&row.public_key)
                .ok_or_else(|| corrupt("public_key", "not 32 bytes"))?,
            name: DeviceName::parse(&row.name).map_err(|e| corrupt("device name", e))?,
            created_at: row.created_at,
        })
    }
}

row! {
    struct FailureWindowRow {
        failures: i32,
        window_ends_at: i64,
    }
}

impl TryFrom<FailureWindowRow> for FailureWindow {
    type Error = StoreError;

    fn try_from(row: FailureWindowRow) -> Result<Self> {
        Ok(Self {
            failures: u32::try_from(row.failures).map_err(|e| corrupt("failures", e))?,
            ends_at: row.window_ends_at,
        })
    }
}

/// A pending sign-in as the app lists it: never its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignin {
    /// The session's id.
    pub id: Uuid,
    /// The application signed in to.
    pub application: ApplicationName,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The browser's address when it opened the sign-in page.
    pub source_ip: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PendingSigninRow {
    id: String,
    name: String,
    created_at: i64,
    expires_at: i64,
    source_ip: Option<String>,
}

/// What [`Store::push_decision`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAttempt {
    /// The device is no longer registered (removed by `mfa/toggle` or the console).
    DeviceGone,
    /// No sign-in of this device's enrollment with this id shows a number: unknown, another
    /// user's, or never offered. Indistinguishable on purpose.
    NotFound,
    /// The sign-in is over, or its lifetime is (then it was just finished as TIMEOUT, with
    /// its callback); nothing was judged.
    NotPending(Session),
    /// The verdict, already applied: the session as it now stands.
    Judged {
        /// What the rule decided.
        verdict: PushVerdict,
        /// The session after the decision.
        session: Session,
        /// The callback of a decision that finished the sign-in, written claimed by the
        /// caller (see [`Store::push_decision`]).
        callback: Option<Callback>,
    },
}

impl Store {
    /// Registers `device` if `judge` approves the code it came with. With the rows of the
    /// registration's throttle `keys` and the enrollment locked, `judge` sees the user key's
    /// and the address key's windows and the enrollment (`None`: nobody is enrolled), and its
    /// verdict is applied in the same transaction:
    ///
    /// - approved: the code's step is marked used and the sign-in's failures cleared (as a
    ///   right code on the sign-in page does), the device inserted, the user key's failures
    ///   forgotten;
    /// - refused: a failure is counted under both keys, and the enrollment is left alone: a
    ///   registration never counts towards the sign-in's back-off or lock;
    /// - locked or throttled: nothing changes.
    ///
    /// The throttle rows are locked first, in the same order by every registration, so that
    /// concurrent registrations of one user or address, in any process, count one after the
    /// other. A public key registered already is a [`StoreError::Conflict`], and then nothing
    /// is written, the code's step included.
    pub async fn register_device(
        &self,
        device: &Device,
        keys: &ThrottleKeys,
        judge: impl FnOnce(
            Option<FailureWindow>,
            Option<FailureWindow>,
            Option<&Enrollment>,
        ) -> Result<device_registration::Verdict, VaultError>
        + Send
        + 'static,
    ) -> Result<device_registration::Verdict> {
        let (device, keys) = (device.clone(), keys.clone());
        let now = device.created_at;
        write_in!(self, tx => {
            let window_sql = match tx.dialect() {
                Dialect::Sqlite => "SELECT failures, window_ends_at FROM registration_failures WHERE throttle_key = $1",
                Dialect::Postgres => "SELECT failures, window_ends_at FROM registration_failures WHERE throttle_key = $1 FOR UPDATE",
            };
            let mut windows = [None, None];
            for (key, window) in [&keys.user, &keys.address].into_iter().zip(&mut windows) {
                // A row to lock, also for the first failure of a key.
                tx.execute(
                    "INSERT INTO registration_failures (throttle_key, failures, window_ends_at)
                     VALUES ($1, 0, $2) ON CONFLICT (throttle_key) DO NOTHING",
                    &args![key, now],
                )
                .await?;
                let row: Option<FailureWindowRow> = tx.fetch_optional(window_sql, &args![key]).await?;
                let row = row.ok_or_else(|| corrupt("registration_failures", "the row just ensured is missing"))?;
                *window = Some(row.try_into()?);
            }
            let [user, address] = windows;
            let enrollment = locked_enrollment(tx, device.client_id, &device.email).await?;
            let verdict = judge(user, address, enrollment.as_ref())
                .map_err(|e| StoreError::Corrupt(format!("sealed TOTP secret: {e}")))?;
            match verdict {
                device_registration::Verdict::Approved { step } => {
                    // The code is used up, as after a sign-in with it, and proves the second
                    // factor: past failures are forgiven. (Not a sign-in: last_approved_at stays.)
                    let step = i64::try_from(step).map_err(|e| StoreError::Corrupt(format!("time step: {e}")))?;
                    tx.execute(
                        "UPDATE enrollments SET last_used_step = $3, consecutive_failures = 0, last_failure_at = NULL
                         WHERE client_id = $1 AND email = $2",
                        &args![device.client_id.to_string(), device.email.as_str(), step],
                    )
                    .await?;
                    tx.execute(
                        concat!("INSERT INTO devices (", device_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)"),
                        &args![
                            device.id.to_string(),
                            device.client_id.to_string(),
                            device.email.as_str(),
                            device.public_key.as_bytes().as_slice(),
                            device.name.as_str(),
                            device.created_at,
                        ],
                    )
                    .await?;
                    tx.execute(
                        "DELETE FROM registration_failures WHERE throttle_key = $1",
                        &args![&keys.user],
                    )
                    .await?;
                }
                device_registration::Verdict::Refused(_) => {
                    for (key, rule, window) in [
                        (&keys.user, device_registration::USER, user),
                        (&keys.address, device_registration::ADDRESS, address),
                    ] {
                        let counted = rule.after_failure(window, now);
                        tx.execute(
                            "UPDATE registration_failures SET failures = $2, window_ends_at = $3
                             WHERE throttle_key = $1",
                            &args![key, i32::try_from(counted.failures).unwrap_or(i32::MAX), counted.ends_at],
                        )
                        .await?;
                    }
                }
                device_registration::Verdict::Locked | device_registration::Verdict::Throttled { .. } => {}
            }
            Ok(verdict)
        })
    }

    /// The failures counted under a registration throttle key, if it has a row.
    pub async fn registration_failures(&self, key: &str) -> Result<Option<FailureWindow>> {
        let row: Option<FailureWindowRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT failures, window_ends_at FROM registration_failures WHERE throttle_key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await?);
        row.map(FailureWindow::try_from).transpose()
    }

    /// Forgets the registration throttle's windows that ended before `now`; returns how many.
    pub async fn prune_registration_failures(&self, now: i64) -> Result<u64> {
        write_one!(self, conn => conn.execute(
            "DELETE FROM registration_failures WHERE window_ends_at < $1",
            &args![now],
        ).await)
    }

    /// The device with this id.
    pub async fn device(&self, id: DeviceId) -> Result<Option<Device>> {
        let row: Option<DeviceRow> = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1"),
        )
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Device::try_from).transpose()
    }

    /// The devices of some of an application's users (a page of the console's user list), by
    /// user, each user's oldest first.
    pub async fn devices_of_users(
        &self,
        client_id: ClientId,
        emails: &[Email],
    ) -> Result<Vec<Device>> {
        let mut devices = Vec::new();
        for chunk in emails.chunks(USERS_PER_STATEMENT) {
            let sql = sqlx::AssertSqlSafe(format!(
                concat!(
                    "SELECT ",
                    device_columns!(),
                    " FROM devices WHERE client_id = $1 AND email IN ({}) ORDER BY email, created_at, id"
                ),
                numbered(2, chunk.len())
            ));
            let rows: Vec<DeviceRow> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(sql).persistent(false).bind(client_id.to_string());
                for email in chunk {
                    query = query.bind(email.as_str());
                }
                query.fetch_all(pool).await?
            });
            for row in rows {
                devices.push(Device::try_from(row)?);
            }
        }
        Ok(devices)
    }

    /// Removes application `client_id`'s device `id` and returns what it was; `None`, with
    /// nothing removed, if the application has no such device — also when `id` is a device of
    /// another application, so a console cannot remove devices outside the application it
    /// checked the account's ownership of.
    pub async fn delete_device(&self, client_id: ClientId, id: DeviceId) -> Result<Option<Device>> {
        let row: Option<DeviceRow> = write_one!(self, conn => conn.fetch_optional(concat!(
            "DELETE FROM devices WHERE id = $1 AND client_id = $2 RETURNING ", device_columns!()
        ), &args![id.to_string(), client_id.to_string()]).await)?;
        row.map(Device::try_from).transpose()
    }

    /// Records that `signer` used `nonce` in a request that is fresh until `expires_at`;
    /// `false`, with nothing written, if it had used it already: a replay. The primary key
    /// decides, so two processes receiving the same request cannot both accept it.
    pub async fn remember_nonce(&self, signer: &str, nonce: &str, expires_at: i64) -> Result<bool> {
        let (signer, nonce) = (signer.to_owned(), nonce.to_owned());
        let inserted = write_one!(self, conn => conn.execute(
            "INSERT INTO app_nonces (signer, nonce, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (signer, nonce) DO NOTHING",
            &args![signer, nonce, expires_at],
        ).await)?;
        Ok(inserted == 1)
    }

    /// Forgets the nonces of requests that can no longer be fresh at `now`; returns how many.
    pub async fn prune_nonces(&self, now: i64) -> Result<u64> {
        write_one!(self, conn => conn.execute(
            "DELETE FROM app_nonces WHERE expires_at < $1",
            &args![now],
        ).await)
    }

    /// The number a pending sign-in shows: `candidate` the first time it is asked, the same
    /// number ever after. `None` once the sign-in is no longer pending.
    pub async fn offer_push(
        &self,
        session_id: Uuid,
        candidate: MatchNumber,
    ) -> Result<Option<MatchNumber>> {
        let stored: Option<(Option<i32>,)> = write_one!(self, conn => conn.fetch_optional(
            "UPDATE sessions SET push_number = COALESCE(push_number, $2)
             WHERE id = $1 AND status = 'PENDING' RETURNING push_number",
            &args![session_id.to_string(), i32::from(candidate.get())],
        ).await)?;
        stored
            .and_then(|(number,)| number)
            .map(|n| MatchNumber::new(n.into()).ok_or_else(|| corrupt("push_number", n)))
            .transpose()
    }

    /// The sign-ins of a user that the app can act on at `now`: pending, within their lifetime
    /// and showing a number; oldest first.
    pub async fn pending_signins(
        &self,
        client_id: ClientId,
        email: &Email,
        now: i64,
    ) -> Result<Vec<PendingSignin>> {
        // Sorted here, not by the query: ordered by creation, SQLite would rather walk every
        // session of the application than the few offered to this user (their own index).
        let mut rows: Vec<PendingSigninRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT s.id, a.name, s.created_at, s.expires_at, s.source_ip
             FROM sessions s JOIN applications a ON a.client_id = s.client_id
             WHERE s.client_id = $1 AND s.email = $2 AND s.status = 'PENDING' AND s.expires_at > $3
                 AND s.push_number IS NOT NULL",
        )
        .bind(client_id.to_string())
        .bind(email.as_str())
        .bind(now)
        .fetch_all(pool)
        .await?);
        rows.sort_unstable_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        rows.into_iter()
            .map(|row| {
                Ok(PendingSignin {
                    id: Uuid::parse_str(&row.id).map_err(|e| corrupt("session id", e))?,
                    application: ApplicationName::parse(&row.name)
                        .map_err(|e| corrupt("name", e))?,
                    created_at: row.created_at,
                    expires_at: row.expires_at,
                    source_ip: row.source_ip,
                })
            })
            .collect()
    }

    /// An approval or denial from `device_id` on a sign-in. With the device's, the session's
    /// and the enrollment's rows locked, the sign-in must belong to the device's enrollment
    /// and show a number; `judge` rules, and its verdict is written in the same transaction:
    /// a wrong number counted, or the session finished (APPROVED or REJECTED) with its
    /// callback. A sign-in past its lifetime is finished as TIMEOUT instead, never approved.
    ///
    /// A decision's callback is written already claimed until `lease_until`, its first
    /// delivery attempt counted, and returned: the caller delivers it at once, and the worker
    /// only if the lease runs out (as for a code, see [`Store::attempt`]).
    pub async fn push_decision(
        &self,
        session_id: Uuid,
        device_id: DeviceId,
        now: i64,
        session_token: &str,
        lease_until: i64,
        judge: impl FnOnce(MatchNumber, &Session, &Enrollment) -> PushVerdict + Send + 'static,
    ) -> Result<PushAttempt> {
        let session_token = session_token.to_owned();
        write_in!(self, tx => {
            let device_sql = match tx.dialect() {
                Dialect::Sqlite => concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1"),
                Dialect::Postgres => concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1 FOR UPDATE"),
            };
            let row: Option<DeviceRow> = tx.fetch_optional(device_sql, &args![device_id.to_string()]).await?;
            let Some(device) = row.map(Device::try_from).transpose()? else {
                return Ok(PushAttempt::DeviceGone);
            };
            let offered = locked_session(tx, session_id)
                .await?
                .filter(|s| s.client_id == device.client_id && s.email == device.email)
                .and_then(|s| s.push_number.map(|number| (s, number)));
            let Some((mut session, number)) = offered else {
                return Ok(PushAttempt::NotFound);
            };
            if session.status != SessionStatus::Pending {
                return Ok(PushAttempt::NotPending(session));
            }
            if session.expires_at <= now {
                finish_noted(tx, &mut session, SessionStatus::TimedOut, now, &session_token, None).await?;
                return Ok(PushAttempt::NotPending(session));
            }
            let Some(enrollment) = locked_enrollment(tx, session.client_id, &session.email).await? else {
                return Ok(PushAttempt::DeviceGone);
            };
            let verdict = judge(number, &session, &enrollment);
            if verdict.is_wrong_number() {
                tx.execute(
                    "UPDATE sessions SET push_failures = push_failures + 1 WHERE id = $1",
                    &args![session.id.to_string()],
                )
                .await?;
                session.push_failures += 1;
            }
            let finish_as = match verdict {
                PushVerdict::Approved => {
                    // The user proved the second factor: failures of the past are forgiven,
                    // as after a right code.
                    tx.execute(
                        "UPDATE enrollments SET consecutive_failures = 0, last_failure_at = NULL
                         WHERE client_id = $1 AND email = $2",
                        &args![session.client_id.to_string(), session.email.as_str()],
                    )
                    .await?;
                    Some(SessionStatus::Approved)
                }
                PushVerdict::WrongNumber { .. } => None,
                PushVerdict::Rejected(_) => Some(SessionStatus::Rejected),
            };
            let callback = match finish_as {
                Some(status) => {
                    finish_noted(tx, &mut session, status, now, &session_token, Some(lease_until)).await?
                }
                None => None,
            };
            Ok(PushAttempt::Judged { verdict, session, callback })
        })
    }
}
