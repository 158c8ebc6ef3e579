//! eAuthenticator's storage: one [`Store`] interface over SQLite (the embedded default) and
//! PostgreSQL (for several `eauthd` processes on one database).
//!
//! Both backends run the same SQL text: `$n` placeholders, `ON CONFLICT`, `RETURNING` and
//! BIGINT Unix-second timestamps mean the same in both, so each query is written once and
//! compiled against each driver by [`on_pool!`]. Only the migrations differ (column types).
//! The store persists what it is given: secrets arrive sealed, keys arrive hashed.

mod records;

use std::{str::FromStr, time::Duration};

use eauth_core::{ApiKeyHash, ClientId, Email};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

pub use records::{Application, Enrollment, NewEnrollment, Session, StoredSessionKey};
use records::{ApplicationRow, EnrollmentRow, SessionRow, StoredSessionKeyRow};

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
        let ips = serde_json::to_string(&app.ip_allow_list.entries().collect::<Vec<_>>())
            .expect("BUG: a list of strings serialises");
        let redirects = serde_json::to_string(
            &app.redirect_uris
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
        .expect("BUG: a list of strings serialises");
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
    /// failure and lock state (a new secret starts a new history).
    pub async fn upsert_enrollment(&self, enrollment: &NewEnrollment, now: i64) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO enrollments (client_id, email, sealed_secret, algorithm, digits, period,
                 last_used_step, consecutive_failures, locked_at, enabled_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, NULL, $7)
             ON CONFLICT (client_id, email) DO UPDATE SET
                 sealed_secret = excluded.sealed_secret, algorithm = excluded.algorithm,
                 digits = excluded.digits, period = excluded.period, last_used_step = NULL,
                 consecutive_failures = 0, locked_at = NULL, enabled_at = excluded.enabled_at",
        )
        .bind(enrollment.client_id.to_string())
        .bind(enrollment.email.as_str())
        .bind(&enrollment.sealed_secret)
        .bind(enrollment.params.algorithm().as_str())
        .bind(i32::from(enrollment.params.digits()))
        .bind(i32::from(enrollment.params.period()))
        .bind(now)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Removes a user's enrollment, and its secret with it; `false` if there was none.
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
            "SELECT client_id, email, sealed_secret, algorithm, digits, period, last_used_step,
                    consecutive_failures, locked_at, enabled_at
             FROM enrollments WHERE client_id = $1 AND email = $2",
        )
        .bind(client_id.to_string())
        .bind(email.as_str())
        .fetch_optional(pool)
        .await?);
        row.map(Enrollment::try_from).transpose()
    }

    /// Records a new pending session, in the same statement that checks the user is enrolled,
    /// so that a concurrent DISABLE cannot slip between check and insert. `false` (nothing
    /// written) if the user has no enrollment.
    pub async fn insert_session_if_enrolled(&self, session: &Session) -> Result<bool> {
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO sessions (id, client_id, email, status, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE EXISTS (SELECT 1 FROM enrollments WHERE client_id = $2 AND email = $3)",
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
            "SELECT id, client_id, email, status, created_at, expires_at, finished_at
             FROM sessions WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?);
        row.map(Session::try_from).transpose()
    }
}

#[cfg(feature = "testing")]
pub mod testing;
