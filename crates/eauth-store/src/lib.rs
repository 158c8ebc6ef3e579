//! eAuthenticator's storage: one [`Store`] interface over SQLite (the embedded default) and
//! PostgreSQL (for several `eauthd` processes on one database).
//!
//! Both backends run the same SQL text: `$n` placeholders, `ON CONFLICT`, `RETURNING` and
//! BIGINT Unix-second timestamps mean the same in both, so each query is written once and
//! compiled against each driver by [`on_pool!`]. Only the migrations differ (column types).
//! The store persists what it is given: secrets arrive sealed, keys arrive hashed.

mod records;

use std::{str::FromStr, time::Duration};

use eauth_core::{ApiKeyHash, ClientId, Email, SessionStatus, signin::Verdict};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

pub use records::{
    Application, Callback, CallbackStatus, DeliveryResult, Enrollment, NewEnrollment, Session,
    StoredSessionKey,
};
use records::{ApplicationRow, CallbackRow, EnrollmentRow, SessionRow, StoredSessionKeyRow};

/// Why a storage operation failed. No driver type escapes this crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key exists already.
    #[error("a record with this key exists already")]
    Conflict,
    /// A stored value no longer parses: the database was edited by hand or is corrupt.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The URL names no supported database.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    /// The database could not be reached or answered with an error.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error.as_database_error() {
            Some(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::Database(Box::new(error)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Database(Box::new(error))
    }
}

/// Storage results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever driver's pool the store holds. The body is
/// compiled once per driver, so it must evaluate to a driver-independent type.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The columns of [`ApplicationRow`], as a literal so queries stay `&'static str`.
macro_rules! application_columns {
    () => {
        "client_id, name, owner_email, ip_allow_list, redirect_uris, callback_url, api_key_hash, \
         sealed_callback_secret, active, created_at"
    };
}

/// The columns of [`SessionRow`].
macro_rules! session_columns {
    () => {
        "id, client_id, email, status, created_at, expires_at, finished_at, failed_attempts, signin_method, \
         source_ip, push_number, push_failures"
    };
}

/// The columns of [`EnrollmentRow`].
macro_rules! enrollment_columns {
    () => {
        "client_id, email, sealed_secret, algorithm, digits, period, last_used_step, consecutive_failures, \
         last_failure_at, locked_at, enabled_at"
    };
}

/// The columns of [`CallbackRow`].
macro_rules! callback_columns {
    () => {
        "id, session_id, client_id, approved, session_token, status, attempts, next_attempt_at, last_error, \
         created_at, delivered_at"
    };
}

/// The insert of an enrollment, before its `VALUES`.
macro_rules! enrollment_insert {
    () => {
        "INSERT INTO enrollments (client_id, email, sealed_secret, algorithm, digits, period, \
         last_used_step, consecutive_failures, locked_at, enabled_at)"
    };
}

/// What enabling an enrolled user again does: a new secret starts a new history.
macro_rules! enrollment_replace {
    () => {
        "ON CONFLICT (client_id, email) DO UPDATE SET \
         sealed_secret = excluded.sealed_secret, algorithm = excluded.algorithm, \
         digits = excluded.digits, period = excluded.period, last_used_step = NULL, \
         consecutive_failures = 0, last_failure_at = NULL, locked_at = NULL, \
         enabled_at = excluded.enabled_at"
    };
}

/// Rows per multi-row statement: 7 parameters each stays far below both drivers' limits
/// (SQLite 32 766, PostgreSQL 65 535).
const ENROLLMENTS_PER_STATEMENT: usize = 500;

/// `rows` comma-separated row tuples for a multi-row statement; `row(n)` writes the row whose
/// first placeholder is `$n`, with `columns` placeholders per row.
fn placeholder_rows(rows: usize, columns: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|i| row(i * columns + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finishes a pending session and writes its callback inside the transaction `$tx`;
/// evaluates to whether the session was pending.
macro_rules! finish_in {
    ($tx:expr, $session:expr, $status:expr, $now:expr, $token:expr) => {{
        let finished = sqlx::query(
            "UPDATE sessions SET status = $2, finished_at = $3 WHERE id = $1 AND status = 'PENDING'",
        )
        .bind($session.id.to_string())
        .bind($status.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            == 1;
        if finished {
            sqlx::query(
                "INSERT INTO callbacks (id, session_id, client_id, approved, session_token, status,
                     attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6)",
            )
            .bind(Uuid::new_v4().to_string())
            .bind($session.id.to_string())
            .bind($session.client_id.to_string())
            .bind($status == SessionStatus::Approved)
            .bind($token)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        finished
    }};
}

/// How a transaction holds a session's and an enrollment's rows until it ends: `BEGIN
/// IMMEDIATE` on SQLite (one writer at a time), `SELECT ... FOR UPDATE` on PostgreSQL.
struct RowLocks {
    begin: &'static str,
    /// What follows a `SELECT` to lock the rows it reads: empty on SQLite.
    lock: &'static str,
    /// Binds the session id.
    session: sqlx::AssertSqlSafe<String>,
    /// Binds client_id and email.
    enrollment: sqlx::AssertSqlSafe<String>,
}

/// Applies to the enrollment inside `$tx` what a code verdict does to it: a right code marks
/// its step used and clears the failures; a wrong one counts a failure and may lock it.
macro_rules! judge_enrollment_in {
    ($tx:expr, $client_id:expr, $email:expr, $verdict:expr, $now:expr) => {{
        let (client_id, email) = ($client_id.to_string(), $email.as_str().to_owned());
        match $verdict {
            Verdict::Approved { step } => {
                let step = i64::try_from(step).map_err(|e| StoreError::Corrupt(format!("time step: {e}")))?;
                sqlx::query(
                    "UPDATE enrollments SET last_used_step = $3, consecutive_failures = 0, last_failure_at = NULL
                     WHERE client_id = $1 AND email = $2",
                )
                .bind(&client_id).bind(&email).bind(step)
                .execute(&mut *$tx).await?;
            }
            Verdict::Wrong { locked, .. } | Verdict::Exhausted { locked } => {
                sqlx::query(
                    "UPDATE enrollments SET consecutive_failures = consecutive_failures + 1,
                         last_failure_at = $3, locked_at = CASE WHEN $4 THEN $3 ELSE locked_at END
                     WHERE client_id = $1 AND email = $2",
                )
                .bind(&client_id).bind(&email).bind($now).bind(locked)
                .execute(&mut *$tx).await?;
            }
            Verdict::Throttled { .. } | Verdict::Locked => {}
        }
    }};
}

/// Reads and locks (see [`RowLocks`]) an enrollment inside `$tx`; evaluates to
/// `Option<Enrollment>`.
macro_rules! locked_enrollment_in {
    ($tx:expr, $locks:expr, $client_id:expr, $email:expr) => {{
        let row: Option<EnrollmentRow> = sqlx::query_as($locks.enrollment)
            .bind($client_id.to_string())
            .bind($email.as_str())
            .fetch_optional(&mut *$tx)
            .await?;
        row.map(Enrollment::try_from).transpose()?
    }};
}

/// [`finish_in!`], and the in-memory `$session` updated to match.
macro_rules! finish_noted_in {
    ($tx:expr, $session:expr, $status:expr, $now:expr, $token:expr) => {{
        finish_in!($tx, $session, $status, $now, $token);
        $session.status = $status;
        $session.finished_at = Some($now);
    }};
}

// After the macros, which it uses.
mod devices;

pub use devices::{Device, PendingSignin, PushAttempt};

mod console;

pub use console::{
    Account, AuditEntry, CallbackEntry, EnrolledUser, NewAuditEntry, OutcomeCount, Page,
    PageRequest, SessionCutoffs, SessionFilter,
};

/// The JSON columns of an application: its addresses and its redirect URIs.
fn settings_json(app: &Application) -> (String, String) {
    let ips = serde_json::to_string(&app.ip_allow_list.entries().collect::<Vec<_>>())
        .expect("BUG: a list of strings serialises");
    let redirects = serde_json::to_string(
        &app.redirect_uris
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    )
    .expect("BUG: a list of strings serialises");
    (ips, redirects)
}

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
    },
}

/// The service's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.pool {
            Pool::Sqlite(_) => "Store(sqlite)",
            Pool::Postgres(_) => "Store(postgres)",
        })
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating a SQLite file if
    /// needed, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // WAL lets readers proceed during a write; FULL makes each commit durable
                // before it returns, which the API promises ("recorded before SUCCESS").
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        Ok(Self { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Closes every connection, waiting for checked-out ones to come back.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Stores `candidate` as the session-signing key unless one exists, and returns the one
    /// that is stored: every process on the database ends up with the same key.
    pub async fn ensure_session_key(
        &self,
        candidate: StoredSessionKey,
        now: i64,
    ) -> Result<StoredSessionKey> {
        let row: StoredSessionKeyRow = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO session_keys (slot, kid, sealed_secret, created_at) VALUES (0, $1, $2, $3)
                 ON CONFLICT (slot) DO NOTHING",
            )
            .bind(&candidate.kid)
            .bind(&candidate.sealed_secret)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query_as("SELECT kid, sealed_secret FROM session_keys WHERE slot = 0")
                .fetch_one(pool)
                .await?
        });
        Ok(row.into())
    }

    /// Registers an application.
    pub async fn insert_application(&self, app: &Application) -> Result<()> {
        let (ips, redirects) = settings_json(app);
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO applications (client_id, name, owner_email, ip_allow_list, redirect_uris,
                 callback_url, api_key_hash, sealed_callback_secret, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(app.client_id.to_string())
        .bind(app.name.as_str())
        .bind(app.owner.as_ref().map(Email::as_str))
        .bind(&ips)
        .bind(&redirects)
        .bind(app.callback_url.to_string())
        .bind(app.api_key_hash.as_bytes().as_slice())
        .bind(&app.sealed_callback_secret)
        .bind(app.active)
        .bind(app.created_at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// The application with this id.
    pub async fn application(&self, client_id: ClientId) -> Result<Option<Application>> {
        let row: Option<ApplicationRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ",
            application_columns!(),
            " FROM applications WHERE client_id = $1"
        ))
        .bind(client_id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Application::try_from).transpose()
    }

    /// Every application, oldest first.
    pub async fn applications(&self) -> Result<Vec<Application>> {
        let rows: Vec<ApplicationRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ",
            application_columns!(),
            " FROM applications ORDER BY created_at, client_id"
        ))
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Application::try_from).collect()
    }

    /// Activates or deactivates an application; `false` if there is none with this id.
    pub async fn set_application_active(
        &self,
        client_id: ClientId,
        active: bool,
        now: i64,
    ) -> Result<bool> {
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE applications SET active = $2, updated_at = $3 WHERE client_id = $1",
        )
        .bind(client_id.to_string())
        .bind(active)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Replaces an application's API key; the old key stops working with this commit.
    /// `false` if there is no application with this id.
    pub async fn replace_api_key(
        &self,
        client_id: ClientId,
        hash: &ApiKeyHash,
        now: i64,
    ) -> Result<bool> {
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE applications SET api_key_hash = $2, updated_at = $3 WHERE client_id = $1",
        )
        .bind(client_id.to_string())
        .bind(hash.as_bytes().as_slice())
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Stores a user's TOTP enrollment, replacing any earlier one together with its replay,
    /// failure and lock state (a new secret starts a new history) and its devices (which
    /// proved only the old secret), in one transaction.
    pub async fn upsert_enrollment(&self, enrollment: &NewEnrollment, now: i64) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(concat!(
                enrollment_insert!(),
                " VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, NULL, $7) ",
                enrollment_replace!()
            ))
            .bind(enrollment.client_id.to_string())
            .bind(enrollment.email.as_str())
            .bind(&enrollment.sealed_secret)
            .bind(enrollment.params.algorithm().as_str())
            .bind(i32::from(enrollment.params.digits()))
            .bind(i32::from(enrollment.params.period()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM devices WHERE client_id = $1 AND email = $2")
                .bind(enrollment.client_id.to_string())
                .bind(enrollment.email.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores many enrollments at once, each as [`upsert_enrollment`](Self::upsert_enrollment)
    /// stores one (fresh state, no devices), in one transaction of multi-row statements:
    /// loading a million users takes seconds instead of a million commits. When a user appears
    /// more than once, the last one wins, as it would one by one.
    pub async fn upsert_enrollments(&self, enrollments: &[NewEnrollment], now: i64) -> Result<()> {
        // One statement may not touch a row twice (PostgreSQL refuses it): keep the last.
        let mut seen = std::collections::HashSet::with_capacity(enrollments.len());
        let mut distinct: Vec<&NewEnrollment> = enrollments
            .iter()
            .rev()
            .filter(|e| seen.insert((e.client_id, e.email.as_str())))
            .collect();
        distinct.reverse();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in distinct.chunks(ENROLLMENTS_PER_STATEMENT) {
                let insert = sqlx::AssertSqlSafe(format!(
                    concat!(enrollment_insert!(), " VALUES {} ", enrollment_replace!()),
                    placeholder_rows(chunk.len(), 7, |n| {
                        format!("(${}, ${}, ${}, ${}, ${}, ${}, NULL, 0, NULL, ${})", n, n + 1, n + 2, n + 3, n + 4, n + 5, n + 6)
                    })
                ));
                let mut query = sqlx::query(insert).persistent(false);
                for enrollment in chunk {
                    query = query
                        .bind(enrollment.client_id.to_string())
                        .bind(enrollment.email.as_str())
                        .bind(&enrollment.sealed_secret)
                        .bind(enrollment.params.algorithm().as_str())
                        .bind(i32::from(enrollment.params.digits()))
                        .bind(i32::from(enrollment.params.period()))
                        .bind(now);
                }
                query.execute(&mut *tx).await?;
                // As one by one: a new secret drops the devices that proved the old one.
                let delete = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM devices WHERE (client_id, email) IN (VALUES {})",
                    placeholder_rows(chunk.len(), 2, |n| format!("(${}, ${})", n, n + 1))
                ));
                let mut query = sqlx::query(delete).persistent(false);
                for enrollment in chunk {
                    query = query.bind(enrollment.client_id.to_string()).bind(enrollment.email.as_str());
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes a user's enrollment, and its secret and devices with it (by cascade); `false`
    /// if there was none.
    pub async fn delete_enrollment(&self, client_id: ClientId, email: &Email) -> Result<bool> {
        let deleted = on_pool!(self, pool => sqlx::query(
            "DELETE FROM enrollments WHERE client_id = $1 AND email = $2",
        )
        .bind(client_id.to_string())
        .bind(email.as_str())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(deleted == 1)
    }

    /// A user's enrollment.
    pub async fn enrollment(
        &self,
        client_id: ClientId,
        email: &Email,
    ) -> Result<Option<Enrollment>> {
        let row: Option<EnrollmentRow> = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT ", enrollment_columns!(), " FROM enrollments WHERE client_id = $1 AND email = $2"),
        )
        .bind(client_id.to_string())
        .bind(email.as_str())
        .fetch_optional(pool)
        .await?);
        row.map(Enrollment::try_from).transpose()
    }

    /// Records a new pending session, in the same statement that checks the user is enrolled
    /// and not locked, so that a concurrent DISABLE cannot slip between check and insert.
    /// `false` (nothing written) if the user has no usable enrollment.
    pub async fn insert_session_if_enrolled(&self, session: &Session) -> Result<bool> {
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, client_id, email, status, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE EXISTS (SELECT 1 FROM enrollments WHERE client_id = $2 AND email = $3 AND locked_at IS NULL)",
        )
        .bind(session.id.to_string())
        .bind(session.client_id.to_string())
        .bind(session.email.as_str())
        .bind(session.status.as_str())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// How many sessions an application has had.
    pub async fn session_count(&self, client_id: ClientId) -> Result<u64> {
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE client_id = $1")
            .bind(client_id.to_string())
            .fetch_one(pool)
            .await?);
        u64::try_from(count).map_err(|e| StoreError::Corrupt(format!("session count: {e}")))
    }

    /// The session with this id.
    pub async fn session(&self, id: Uuid) -> Result<Option<Session>> {
        let row: Option<SessionRow> = on_pool!(self, pool => sqlx::query_as(
            concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = $1"),
        )
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Session::try_from).transpose()
    }

    /// Notes how and from where the sign-in page was first opened.
    pub async fn record_page_open(
        &self,
        id: Uuid,
        signin_method: &str,
        source_ip: &str,
    ) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE sessions SET signin_method = COALESCE(signin_method, $2), source_ip = COALESCE(source_ip, $3)
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(signin_method)
        .bind(source_ip)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Finishes a pending session with `status` and writes its callback (carrying
    /// `session_token`) in the same transaction; `false`, with nothing written, if the session
    /// was not pending.
    pub async fn finish_session(
        &self,
        session: &Session,
        status: SessionStatus,
        now: i64,
        session_token: &str,
    ) -> Result<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = finish_in!(tx, session, status, now, session_token);
            tx.commit().await?;
            Ok(finished)
        })
    }

    /// Pending sessions whose lifetime ended at or before `now`, oldest first.
    pub async fn expired_sessions(&self, now: i64, limit: u32) -> Result<Vec<Session>> {
        let rows: Vec<SessionRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", session_columns!(),
            " FROM sessions WHERE status = 'PENDING' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Session::try_from).collect()
    }

    fn row_locks(&self) -> RowLocks {
        let (begin, lock) = match self.pool {
            Pool::Sqlite(_) => ("BEGIN IMMEDIATE", ""),
            Pool::Postgres(_) => ("BEGIN", " FOR UPDATE"),
        };
        RowLocks {
            begin,
            lock,
            session: sqlx::AssertSqlSafe(format!(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id = $1{}"
                ),
                lock
            )),
            enrollment: sqlx::AssertSqlSafe(format!(
                concat!(
                    "SELECT ",
                    enrollment_columns!(),
                    " FROM enrollments WHERE client_id = $1 AND email = $2{}"
                ),
                lock
            )),
        }
    }

    /// One code attempt on a session. With the session's and the enrollment's rows locked
    /// (`BEGIN IMMEDIATE` on SQLite, `FOR UPDATE` on PostgreSQL), `judge` rules on the stored
    /// state, and its verdict is applied in the same transaction: the step marked used, failures
    /// counted, the enrollment locked, the session finished with its callback. Concurrent
    /// attempts, from any process, are judged one after the other.
    pub async fn attempt(
        &self,
        session_id: Uuid,
        now: i64,
        session_token: &str,
        judge: impl FnOnce(&Session, &Enrollment) -> Result<Verdict, eauth_core::VaultError>,
    ) -> Result<Attempt> {
        let locks = self.row_locks();
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(locks.begin).await?;
            let row: Option<SessionRow> =
                sqlx::query_as(locks.session).bind(session_id.to_string()).fetch_optional(&mut *tx).await?;
            let Some(mut session) = row.map(Session::try_from).transpose()? else {
                return Ok(Attempt::UnknownSession);
            };
            if session.status != SessionStatus::Pending || session.expires_at <= now {
                return Ok(Attempt::NotPending(session));
            }
            let Some(enrollment) = locked_enrollment_in!(tx, locks, session.client_id, session.email) else {
                return Ok(Attempt::NotEnrolled);
            };
            let verdict = judge(&session, &enrollment).map_err(|e| StoreError::Corrupt(format!("sealed TOTP secret: {e}")))?;
            judge_enrollment_in!(tx, session.client_id, session.email, verdict, now);
            let finish_as = match verdict {
                Verdict::Approved { .. } => Some(SessionStatus::Approved),
                Verdict::Wrong { locked, .. } | Verdict::Exhausted { locked } => {
                    sqlx::query("UPDATE sessions SET failed_attempts = failed_attempts + 1 WHERE id = $1")
                        .bind(session.id.to_string())
                        .execute(&mut *tx).await?;
                    session.failed_attempts += 1;
                    (matches!(verdict, Verdict::Exhausted { .. }) || locked).then_some(SessionStatus::Rejected)
                }
                // A locked enrollment cannot finish this sign-in any other way.
                Verdict::Locked => Some(SessionStatus::Rejected),
                Verdict::Throttled { .. } => None,
            };
            if let Some(status) = finish_as {
                finish_noted_in!(tx, session, status, now, session_token);
            }
            tx.commit().await?;
            Ok(Attempt::Judged { verdict, session })
        })
    }

    /// Claims the callback that is due soonest (at or before `now`) for delivery until
    /// `lease_until`, counting the attempt. Several workers, in several processes, never claim
    /// the same one while a lease holds.
    pub async fn claim_due_callback(&self, now: i64, lease_until: i64) -> Result<Option<Callback>> {
        // PostgreSQL skips rows another worker is claiming instead of waiting for them.
        let sql = match self.pool {
            Pool::Sqlite(_) => concat!(
                "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 WHERE id = (",
                "SELECT id FROM callbacks WHERE status = 'PENDING' AND next_attempt_at <= $1 ",
                "AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT 1) ",
                "RETURNING ",
                callback_columns!()
            ),
            Pool::Postgres(_) => concat!(
                "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 WHERE id = (",
                "SELECT id FROM callbacks WHERE status = 'PENDING' AND next_attempt_at <= $1 ",
                "AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT 1 ",
                "FOR UPDATE SKIP LOCKED) RETURNING ",
                callback_columns!()
            ),
        };
        let row: Option<CallbackRow> = on_pool!(self, pool => sqlx::query_as(sql).bind(now).bind(lease_until).fetch_optional(pool).await?);
        row.map(Callback::try_from).transpose()
    }

    /// Claims one callback by id, if it is pending and nobody holds it.
    pub async fn claim_callback(
        &self,
        id: Uuid,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Callback>> {
        let row: Option<CallbackRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 ",
            "WHERE id = $3 AND status = 'PENDING' AND (lease_until IS NULL OR lease_until <= $1) ",
            "RETURNING ", callback_columns!()
        ))
        .bind(now)
        .bind(lease_until)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Callback::try_from).transpose()
    }

    /// Records what a claimed delivery came to, and releases the claim.
    pub async fn record_delivery(&self, id: Uuid, result: &DeliveryResult, now: i64) -> Result<()> {
        let (status, next_attempt_at, error) = match result {
            DeliveryResult::Delivered => (CallbackStatus::Delivered, None, None),
            DeliveryResult::Retry {
                next_attempt_at,
                error,
            } => (
                CallbackStatus::Pending,
                Some(*next_attempt_at),
                Some(error.as_str()),
            ),
            DeliveryResult::GaveUp { error } => {
                (CallbackStatus::Failed, None, Some(error.as_str()))
            }
        };
        on_pool!(self, pool => sqlx::query(
            "UPDATE callbacks SET status = $2, next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4,
                 delivered_at = CASE WHEN $2 = 'DELIVERED' THEN $5 ELSE delivered_at END, lease_until = NULL
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(next_attempt_at)
        .bind(error)
        .bind(now)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// The callback of a session, once it is finished.
    pub async fn callback_of_session(&self, session_id: Uuid) -> Result<Option<Callback>> {
        let row: Option<CallbackRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", callback_columns!(), " FROM callbacks WHERE session_id = $1"
        ))
        .bind(session_id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Callback::try_from).transpose()
    }
}

#[cfg(feature = "testing")]
pub mod testing;
