//! Code attempts on the sign-in page (see [`Store::batched`]): a batch reads its sessions and
//! their enrollments with one locking statement each, judges every attempt in the order they
//! came against what earlier attempts of the batch did, and writes the outcome with one
//! statement per table. On PostgreSQL that is five statements whatever the batch size; on
//! SQLite, where a batch is one attempt, five statements of a few microseconds.

use std::collections::{HashMap, HashSet};

use eauth_core::{ClientId, SessionStatus, VaultError, signin::Verdict};
use uuid::Uuid;

use crate::{
    Callback, Enrollment, Pool, Result, Session,
    SqlType::{BigInt, Text},
    Store, StoreError,
    db::Value,
    execute_rows, fetch_rows, insert_callbacks,
    records::{EnrollmentRow, SessionRow},
    rows_source, update_rows,
};

/// Rules on an attempt, given the session and the enrollment as they stand.
pub type Judge = Box<dyn FnOnce(&Session, &Enrollment) -> Result<Verdict, VaultError> + Send>;

/// What [`Store::attempt`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// No session has this id.
    UnknownSession,
    /// The session is finished or past its lifetime; nothing was judged.
    NotPending(Session),
    /// The user is no longer enrolled; nothing was judged.
    NotEnrolled,
    /// The verdict, already applied: the session as it now stands.
    Judged {
        /// What the rules decided.
        verdict: Verdict,
        /// The session after the attempt.
        session: Session,
        /// How many digits the user's codes have, for the page that asks again.
        digits: u8,
        /// An approval's callback, written claimed by the caller (see [`Store::attempt`]).
        callback: Option<Callback>,
    },
}

/// One attempt waiting for its batch.
pub(crate) struct Call {
    session_id: Uuid,
    now: i64,
    session_token: String,
    lease_until: i64,
    judge: Judge,
}

type EnrollmentKey = (ClientId, String);

impl Store {
    /// One code attempt on a session. With the session's and the enrollment's rows locked
    /// (the writer's `BEGIN IMMEDIATE` on SQLite, `FOR UPDATE` on PostgreSQL), `judge` rules
    /// on the stored state, and its verdict is applied in the same transaction: the step
    /// marked used, failures counted, the enrollment locked, the session finished with its
    /// callback. Concurrent attempts, from any process, are judged one after the other.
    ///
    /// An approval's callback is written already claimed until `lease_until`, its first
    /// delivery attempt counted, and returned: the caller delivers it at once (the backend
    /// should know before the browser arrives), and the worker only if the lease runs out.
    pub async fn attempt(
        &self,
        session_id: Uuid,
        now: i64,
        session_token: &str,
        lease_until: i64,
        judge: impl FnOnce(&Session, &Enrollment) -> Result<Verdict, VaultError> + Send + 'static,
    ) -> Result<Attempt> {
        let call = Call {
            session_id,
            now,
            session_token: session_token.to_owned(),
            lease_until,
            judge: Box::new(judge),
        };
        self.batched(&self.batches.attempts, call, Store::attempts)
            .await
    }

    /// Judges and writes a batch of attempts in one write; each attempt's own failure (a
    /// secret that cannot be opened) is its own and changes nothing.
    async fn attempts(self, calls: Vec<Call>) -> Result<Vec<Result<Attempt>>> {
        // Every check comes before the first change, and the changes are updates of the rows
        // read and a callback for a session that had none: only a fault can fail them.
        write_checked!(self, tx => {
            let dialect = tx.dialect();
            let mut ids: Vec<String> = calls.iter().map(|c| c.session_id.to_string()).collect();
            ids.sort_unstable();
            ids.dedup();
            let sql = text_per_dialect!(dialect, format!(
                concat!("SELECT ", session_columns!(), " FROM {} JOIN sessions t ON t.id = v.column1{}"),
                rows_source(dialect, &[Text]),
                dialect.locked_in_order("t.id", "t")
            ));
            let wanted: Vec<Vec<Value<'_>>> = ids.iter().map(|id| args![id].into()).collect();
            let mut sessions = HashMap::new();
            for row in fetch_rows::<_, SessionRow>(tx, sql, &wanted).await? {
                let session = Session::try_from(row)?;
                sessions.insert(session.id, session);
            }

            let mut keys: Vec<EnrollmentKey> = sessions
                .values()
                .map(|s| (s.client_id, s.email.as_str().to_owned()))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let mut enrollments: HashMap<EnrollmentKey, Enrollment> = HashMap::new();
            if !keys.is_empty() {
                // A join, not `(client_id, email) IN (VALUES ...)`, which SQLite answers by
                // scanning the whole table.
                let sql = text_per_dialect!(dialect, format!(
                    concat!(
                        "SELECT ", enrollment_columns!(),
                        " FROM {} JOIN enrollments e ON e.client_id = v.column1 AND e.email = v.column2{}"
                    ),
                    rows_source(dialect, &[Text, Text]),
                    dialect.locked_in_order("e.client_id, e.email", "e")
                ));
                let wanted: Vec<Vec<Value<'_>>> = keys
                    .iter()
                    .map(|(client_id, email)| args![client_id.to_string(), email].into())
                    .collect();
                for row in fetch_rows::<_, EnrollmentRow>(tx, sql, &wanted).await? {
                    let enrollment = Enrollment::try_from(row)?;
                    enrollments.insert((enrollment.client_id, enrollment.email.as_str().to_owned()), enrollment);
                }
            }

            let mut changed_sessions = HashSet::new();
            let mut changed_enrollments = HashSet::new();
            let mut callbacks = Vec::new();
            let results = calls
                .into_iter()
                .map(|call| {
                    let Some(session) = sessions.get_mut(&call.session_id) else {
                        return Ok(Attempt::UnknownSession);
                    };
                    if session.status != SessionStatus::Pending || session.expires_at <= call.now {
                        return Ok(Attempt::NotPending(session.clone()));
                    }
                    let key = (session.client_id, session.email.as_str().to_owned());
                    let Some(enrollment) = enrollments.get_mut(&key) else {
                        return Ok(Attempt::NotEnrolled);
                    };
                    let verdict = (call.judge)(session, enrollment)
                        .map_err(|e| StoreError::Corrupt(format!("sealed TOTP secret: {e}")))?;
                    if enrollment.apply(verdict, call.now) {
                        changed_enrollments.insert(key);
                    }
                    let finish_as = session.apply(verdict);
                    let mut callback = None;
                    if let Some(status) = finish_as {
                        session.status = status;
                        session.finished_at = Some(call.now);
                        let lease = (status == SessionStatus::Approved).then_some(call.lease_until);
                        let written = Callback::new(session, call.session_token, call.now, lease);
                        callbacks.push((written.clone(), lease));
                        callback = lease.map(|_| written);
                    }
                    if verdict.is_failure() || finish_as.is_some() {
                        changed_sessions.insert(session.id);
                    }
                    Ok(Attempt::Judged {
                        verdict,
                        session: session.clone(),
                        digits: enrollment.params.digits(),
                        callback,
                    })
                })
                .collect::<Vec<_>>();

            if !changed_enrollments.is_empty() {
                let sql = text_per_dialect!(dialect, update_rows(
                    dialect,
                    "enrollments",
                    &[Text, Text, BigInt, BigInt, BigInt, BigInt, BigInt],
                    "last_used_step = v.column3, consecutive_failures = v.column4,
                         last_failure_at = v.column5, locked_at = v.column6, last_approved_at = v.column7",
                    "enrollments.client_id = v.column1 AND enrollments.email = v.column2",
                ));
                let rows: Vec<Vec<Value<'_>>> = changed_enrollments
                    .iter()
                    .map(|key| {
                        let enrollment = &enrollments[key];
                        args![
                            enrollment.client_id.to_string(),
                            enrollment.email.as_str(),
                            enrollment.last_used_step,
                            enrollment.consecutive_failures,
                            enrollment.last_failure_at,
                            enrollment.locked_at,
                            enrollment.last_approved_at
                        ]
                        .into()
                    })
                    .collect();
                execute_rows(tx, sql, &rows).await?;
            }

            if !changed_sessions.is_empty() {
                let sql = text_per_dialect!(dialect, update_rows(
                    dialect,
                    "sessions",
                    &[Text, Text, BigInt, BigInt],
                    "status = v.column2, finished_at = v.column3, failed_attempts = v.column4",
                    "sessions.id = v.column1",
                ));
                let rows: Vec<Vec<Value<'_>>> = changed_sessions
                    .iter()
                    .map(|id| {
                        let session = &sessions[id];
                        args![
                            session.id.to_string(),
                            session.status.as_str(),
                            session.finished_at,
                            session.failed_attempts
                        ]
                        .into()
                    })
                    .collect();
                execute_rows(tx, sql, &rows).await?;
            }

            insert_callbacks(tx, &callbacks).await?;
            Ok(results)
        })
    }
}
