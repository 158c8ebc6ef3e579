//! eAuthenticator's storage: one [`Store`] interface over SQLite (the embedded default) and
//! PostgreSQL (for several `eauthd` processes on one database).
//!
//! Both backends run the same SQL text: `$n` placeholders, `ON CONFLICT`, `RETURNING` and
//! BIGINT Unix-second timestamps mean the same in both, so each query is written once and
//! compiled against each driver by [`on_pool!`]. Only the migrations differ (column types).
//! The store persists what it is given: secrets arrive sealed, keys arrive hashed.

// Libraries report through `tracing`: a print is a leftover of debugging.
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod db;
mod batch;
mod records;
mod sqlite;

use std::{str::FromStr, time::Duration};

use eauth_core::{ApiKeyHash, ClientId, Email, SessionStatus};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

pub use records::{
    Application, Callback, CallbackStatus, DeliveryResult, Enrollment, NewEnrollment, Revision,
    Session, StoredSessionKey,
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
    /// The application changed since the copy a write was made for was read: nothing was
    /// written. Read it again, and decide again.
    #[error("the application changed since it was read")]
    ApplicationChanged,
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
    /// The store's statements on rusqlite (see [`sqlite`]); the reads not yet written for
    /// both backends on sqlx's pool, read-only.
    Sqlite(SqlitePool, std::sync::Arc<sqlite::Sqlite>),
    /// The pool, and the copies of applications this process read (see
    /// [`Store::application_copy`]).
    Postgres(PgPool, std::sync::Arc<lookups::Copies>),
}

/// Runs `$body` with `$pool` bound to whichever sqlx pool the store holds. The body is
/// compiled once per driver, so it must evaluate to a driver-independent type.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool, _) => $body,
            Pool::Postgres($pool, _) => $body,
        }
    };
}

/// `$body` (the body of an async block that uses `$conn`, a [`db::Conn`], and evaluates to a
/// `Result`) as the closure a SQLite connection runs, to its end at once ([`sqlite::now`]).
macro_rules! sqlite_body {
    ($conn:ident => $body:expr) => {
        move |$conn: &mut $crate::sqlite::SqliteConn<'_>| {
            $crate::sqlite::now(async move {
                let result: Result<_> = $body;
                result
            })
        }
    };
}

/// `$body` (as for [`sqlite_body!`]) on a connection of PostgreSQL's pool, in a transaction
/// (`tx`) or not (`connection`). Boxed: sqlx's futures are large, and an unboxed arm would make
/// every caller's future as large, on SQLite too, to be moved at every await of every caller.
macro_rules! postgres_body {
    ($pool:expr, tx, $conn:ident => $body:expr) => {
        Box::pin(async move {
            let mut tx = $pool.begin().await?;
            let value = {
                let $conn = &mut $crate::db::Pg(&mut *tx);
                let result: Result<_> = async move { $body }.await;
                result
            }?;
            tx.commit().await?;
            Ok(value)
        })
        .await
    };
    ($pool:expr, connection, $conn:ident => $body:expr) => {
        Box::pin(async move {
            let mut connection = $pool.acquire().await?;
            let $conn = &mut $crate::db::Pg(&mut *connection);
            let result: Result<_> = async move { $body }.await;
            result
        })
        .await
    };
}

/// Runs `$body` (as for [`sqlite_body!`]) as one atomic, durable write: on SQLite as a job of
/// the writer (see [`sqlite`] for the rule a job follows), on PostgreSQL in a transaction of its
/// own. The body is compiled once per backend; on SQLite it runs on the writer's thread, so it
/// owns what it uses.
macro_rules! write_in {
    ($store:expr, $conn:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::db::Conn as _;
        match &$store.pool {
            Pool::Sqlite(_, sqlite) => sqlite.write(sqlite_body!($conn => $body)).await,
            Pool::Postgres(pool, _) => postgres_body!(pool, tx, $conn => $body),
        }
    }};
}

/// [`write_in!`] for a body that changes the database with one statement at most (it may read
/// as it likes): on SQLite a job of the writer without a savepoint, on PostgreSQL outside a
/// transaction, the statement atomic by itself. Two round trips less on PostgreSQL; on SQLite,
/// no copy of the pages the job changes (see [`sqlite`]).
macro_rules! write_one {
    ($store:expr, $conn:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::db::Conn as _;
        match &$store.pool {
            Pool::Sqlite(_, sqlite) => sqlite.write_one(sqlite_body!($conn => $body)).await,
            Pool::Postgres(pool, _) => postgres_body!(pool, connection, $conn => $body),
        }
    }};
}

/// [`write_in!`] for a body that fails, if at all, before its first change: it reads and
/// checks first, then makes changes that only a fault of the database can fail. On SQLite a
/// job of the writer without a savepoint, which would copy every page the job changes (should
/// the body fail after a change all the same, its whole batch is rolled back); on PostgreSQL
/// in a transaction, as [`write_in!`].
macro_rules! write_checked {
    ($store:expr, $conn:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::db::Conn as _;
        match &$store.pool {
            Pool::Sqlite(_, sqlite) => sqlite.write_checked(sqlite_body!($conn => $body)).await,
            Pool::Postgres(pool, _) => postgres_body!(pool, tx, $conn => $body),
        }
    }};
}

/// Runs `$body` (as for [`sqlite_body!`]) as a read: on SQLite on this thread, on PostgreSQL on
/// a connection of the pool.
macro_rules! read_in {
    ($store:expr, $conn:ident => $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::db::Conn as _;
        match &$store.pool {
            Pool::Sqlite(_, sqlite) => sqlite.read(sqlite_body!($conn => $body)),
            Pool::Postgres(pool, _) => postgres_body!(pool, connection, $conn => $body),
        }
    }};
}

/// The columns of [`ApplicationRow`], as a literal so queries stay `&'static str`.
macro_rules! application_columns {
    () => {
        "client_id, name, owner_email, ip_allow_list, redirect_uris, callback_url, api_key_hash, \
         sealed_callback_secret, active, created_at, revision"
    };
}

/// The columns of [`SessionRow`].
macro_rules! session_columns {
    () => {
        "id, client_id, email, status, created_at, expires_at, finished_at, failed_attempts, signin_method, \
         source_ip, push_number, push_failures"
    };
}

/// The columns of [`devices::DeviceRow`].
macro_rules! device_columns {
    () => {
        "id, client_id, email, public_key, name, created_at"
    };
}

/// The columns of [`EnrollmentRow`].
macro_rules! enrollment_columns {
    () => {
        "client_id, email, sealed_secret, algorithm, digits, period, last_used_step, consecutive_failures, \
         last_failure_at, locked_at, enabled_at, last_approved_at"
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

/// A statement's text, built on first use once per dialect, where `format!` would build it on
/// every call: the texts of the sign-in page's statements, built per call, were 6 % of a code
/// verification's instructions. `$text` may depend on the dialect and on nothing else.
macro_rules! text_per_dialect {
    ($dialect:expr, $text:expr) => {{
        static TEXTS: [std::sync::OnceLock<String>; 2] =
            [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
        let dialect: $crate::Dialect = $dialect;
        TEXTS[dialect as usize].get_or_init(|| $text).as_str()
    }};
}

/// Enrollments per statement of a bulk load on PostgreSQL, where a statement costs a round
/// trip (on SQLite each row is a statement of its own, see [`rows_source`]): a few hundred
/// kilobytes of JSON each.
const ENROLLMENTS_PER_STATEMENT: usize = 500;

/// Which SQL a statement is written in, where the backends' differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The dialect of a connection, for statements written inside [`write_in!`], whose body is
/// compiled once per backend.
trait SpeaksDialect {
    const DIALECT: Dialect;
}

impl Dialect {
    /// What ends a `SELECT` that locks the rows of `alias` it reads, in the order of `order`,
    /// so that batches of several processes take their locks in the same order and cannot
    /// deadlock. Nothing on SQLite, whose `BEGIN IMMEDIATE` holds the whole database: it needs
    /// neither the lock nor the order, which it would sort for.
    fn locked_in_order(self, order: &str, alias: &str) -> String {
        match self {
            Self::Sqlite => String::new(),
            Self::Postgres => format!(" ORDER BY {order} FOR UPDATE OF {alias}"),
        }
    }
}

/// The type of a column of [`rows_source`].
#[derive(Debug, Clone, Copy)]
enum SqlType {
    Text,
    BigInt,
    Bool,
    Bytes,
}

impl SqlType {
    /// Element `i` of a row of PostgreSQL's JSON rows (`j`) as this type.
    fn postgres(&self, i: usize) -> String {
        match self {
            Self::Text => format!("(j ->> {i})::text"),
            Self::BigInt => format!("(j ->> {i})::bigint"),
            Self::Bool => format!("(j ->> {i})::boolean"),
            // Bytes travel as hex (`db::Value::to_json`).
            Self::Bytes => format!("decode(j ->> {i}, 'hex')"),
        }
    }
}

/// A `FROM` source named `v` of the rows a statement is given with [`execute_rows`] or
/// [`fetch_rows`]: columns `column1`, `column2`, ... (as in a `VALUES` list) of `types`.
///
/// On PostgreSQL the rows of a whole batch are one JSON parameter, so that a batch of any size
/// is the same statement, prepared once per connection (a text per batch size was parsed and
/// planned every time), and a round trip serves them all. `eauth_rows` (migration 0008) is
/// `json_array_elements` with an estimate of its rows, so that the planner looks each row up by
/// index instead of scanning the table it joins. On SQLite, where a statement costs
/// microseconds and no round trip, it is one row of parameters, and the statement runs once
/// per row.
fn rows_source(dialect: Dialect, types: &[SqlType]) -> String {
    let columns = |column: &dyn Fn(usize, &SqlType) -> String| {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| column(i, t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match dialect {
        Dialect::Sqlite => format!(
            "(SELECT {}) AS v",
            columns(&|i, _| format!("${} AS column{}", i + 1, i + 1))
        ),
        Dialect::Postgres => format!(
            "(SELECT {} FROM eauth_rows($1::json) AS j) AS v",
            columns(&|i, t| format!("{} AS column{}", t.postgres(i), i + 1))
        ),
    }
}

/// `UPDATE table SET set WHERE matching` for each of the rows given to [`execute_rows`] (of
/// `types`), the clauses naming a row's values `v.column1`, `v.column2`, ... On PostgreSQL the
/// update joins [`rows_source`]. On SQLite, which runs it once per row, the clauses name the
/// row's parameters instead: its `UPDATE ... FROM` copies the one-row source and the join into
/// two temporary B-trees, and journals the statement. (With the reads by `IN (SELECT ...)`,
/// which build a temporary index, now joins, that was a fifth of a code verification's
/// instructions.)
fn update_rows(
    dialect: Dialect,
    table: &str,
    types: &[SqlType],
    set: &str,
    matching: &str,
) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "UPDATE {table} SET {} WHERE {}",
            row_parameters(set),
            row_parameters(matching)
        ),
        Dialect::Postgres => format!(
            "UPDATE {table} SET {set} FROM {} WHERE {matching}",
            rows_source(dialect, types)
        ),
    }
}

/// `INSERT INTO into VALUES values` for each of the rows given to [`execute_rows`] (of `types`),
/// `values` naming a row's values `v.column1`, `v.column2`, ... (as [`update_rows`]). On
/// PostgreSQL an `INSERT ... SELECT` over [`rows_source`]. On SQLite, `VALUES`: it journals every
/// page an `INSERT ... SELECT` changes, in case the statement must be undone after some of the
/// rows it might insert.
fn insert_rows(dialect: Dialect, into: &str, types: &[SqlType], values: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("INSERT INTO {into} VALUES ({})", row_parameters(values)),
        Dialect::Postgres => format!(
            "INSERT INTO {into} SELECT {values} FROM {}",
            rows_source(dialect, types)
        ),
    }
}

/// `DELETE FROM table WHERE matching` for each of the rows given to [`execute_rows`], as
/// [`update_rows`] updates.
fn delete_rows(dialect: Dialect, table: &str, types: &[SqlType], matching: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("DELETE FROM {table} WHERE {}", row_parameters(matching)),
        Dialect::Postgres => format!(
            "DELETE FROM {table} USING {} WHERE {matching}",
            rows_source(dialect, types)
        ),
    }
}

/// SQLite's text of a clause over one row of [`rows_source`]: `v.columnN` is parameter `$N`.
fn row_parameters(clause: &str) -> String {
    const VALUE: &str = "v.column";
    let mut text = String::with_capacity(clause.len());
    let mut rest = clause;
    while let Some(at) = rest.find(VALUE) {
        let (before, after) = rest.split_at(at);
        let digits = after[VALUE.len()..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        // `v` itself, not the end of another name (`dev.column1`, `x.v.column1`).
        let of_v = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.');
        let (value, after) = after.split_at(VALUE.len() + digits);
        text.push_str(before);
        if of_v && digits > 0 {
            text.push('$');
            text.push_str(&value[VALUE.len()..]);
        } else {
            text.push_str(value);
        }
        rest = after;
    }
    text.push_str(rest);
    text
}

/// Rows for a statement over [`rows_source`], each its values in column order.
type Rows<'a> = [Vec<db::Value<'a>>];

/// The rows as one JSON array of arrays, for PostgreSQL's [`rows_source`].
fn json_of(rows: &Rows<'_>) -> String {
    serde_json::Value::Array(
        rows.iter()
            .map(|row| serde_json::Value::Array(row.iter().map(db::Value::to_json).collect()))
            .collect(),
    )
    .to_string()
}

/// Runs `sql`, a statement over [`rows_source`], for `rows`; the rows it changed.
async fn execute_rows<C: db::Conn>(conn: &mut C, sql: &str, rows: &Rows<'_>) -> Result<u64> {
    match C::DIALECT {
        Dialect::Sqlite => {
            let mut changed = 0;
            for row in rows {
                changed += conn.execute(sql, row).await?;
            }
            Ok(changed)
        }
        Dialect::Postgres if rows.is_empty() => Ok(0),
        Dialect::Postgres => conn.execute(sql, &args![json_of(rows)]).await,
    }
}

/// Runs `sql`, a query over [`rows_source`], for `rows`; every row it gives.
async fn fetch_rows<C: db::Conn, R: db::Row>(
    conn: &mut C,
    sql: &str,
    rows: &Rows<'_>,
) -> Result<Vec<R>> {
    match C::DIALECT {
        Dialect::Sqlite => {
            let mut all = Vec::new();
            for row in rows {
                all.extend(conn.fetch_all(sql, row).await?);
            }
            Ok(all)
        }
        Dialect::Postgres if rows.is_empty() => Ok(Vec::new()),
        Dialect::Postgres => conn.fetch_all(sql, &args![json_of(rows)]).await,
    }
}

/// `count` consecutive placeholders from `$first`: `$first, $first+1, ...`.
fn numbered(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes callbacks (`(Callback, lease)` pairs, see [`Callback::new`]).
async fn insert_callbacks<C: db::Conn>(
    conn: &mut C,
    callbacks: &[(Callback, Option<i64>)],
) -> Result<()> {
    use SqlType::{BigInt, Bool, Text};
    let sql = text_per_dialect!(
        C::DIALECT,
        insert_rows(
            C::DIALECT,
            "callbacks (id, session_id, client_id, approved, session_token, status, attempts,
                 next_attempt_at, lease_until, created_at)",
            &[Text, Text, Text, Bool, Text, BigInt, BigInt, BigInt],
            // created_at is next_attempt_at again: due as it is written.
            "v.column1, v.column2, v.column3, v.column4, v.column5, 'PENDING', v.column6,
                 v.column7, v.column8, v.column7",
        )
    );
    let rows: Vec<_> = callbacks
        .iter()
        .map(|(callback, lease)| {
            vec![
                callback.id.to_string().into(),
                callback.session_id.to_string().into(),
                callback.client_id.to_string().into(),
                callback.approved.into(),
                callback.session_token.as_str().into(),
                callback.attempts.into(),
                callback.created_at.into(),
                (*lease).into(),
            ]
        })
        .collect();
    execute_rows(conn, sql, &rows).await?;
    Ok(())
}

/// Finishes a pending session with `status` and writes its callback (carrying `token`),
/// claimed until `lease` if given (its first attempt counted: the caller delivers it); the
/// callback, if the session was pending (else nothing is written).
async fn finish<C: db::Conn>(
    conn: &mut C,
    session: &Session,
    status: SessionStatus,
    now: i64,
    token: &str,
    lease: Option<i64>,
) -> Result<Option<Callback>> {
    let finished = conn
        .execute(
            "UPDATE sessions SET status = $2, finished_at = $3 WHERE id = $1 AND status = 'PENDING'",
            &args![session.id.to_string(), status.as_str(), now],
        )
        .await?
        == 1;
    if !finished {
        return Ok(None);
    }
    if status == SessionStatus::Approved {
        conn.execute(
            "UPDATE enrollments SET last_approved_at = $3 WHERE client_id = $1 AND email = $2",
            &args![session.client_id.to_string(), session.email.as_str(), now],
        )
        .await?;
    }
    let mut finished = session.clone();
    finished.status = status;
    let callback = Callback::new(&finished, token.to_owned(), now, lease);
    insert_callbacks(conn, &[(callback.clone(), lease)]).await?;
    Ok(Some(callback))
}

/// [`finish`], and `session` updated to match.
async fn finish_noted<C: db::Conn>(
    conn: &mut C,
    session: &mut Session,
    status: SessionStatus,
    now: i64,
    token: &str,
    lease: Option<i64>,
) -> Result<Option<Callback>> {
    let callback = finish(conn, session, status, now, token, lease).await?;
    session.status = status;
    session.finished_at = Some(now);
    Ok(callback)
}

/// Reads a session and holds its row until the transaction ends: SQLite's writer holds the
/// whole database (`BEGIN IMMEDIATE`), PostgreSQL locks the row (`FOR UPDATE`).
async fn locked_session<C: db::Conn>(conn: &mut C, id: Uuid) -> Result<Option<Session>> {
    let sql = match C::DIALECT {
        Dialect::Sqlite => concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1"
        ),
        Dialect::Postgres => concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1 FOR UPDATE"
        ),
    };
    let row: Option<SessionRow> = conn.fetch_optional(sql, &args![id.to_string()]).await?;
    row.map(Session::try_from).transpose()
}

/// Reads an enrollment and holds its row, as [`locked_session`] does.
async fn locked_enrollment<C: db::Conn>(
    conn: &mut C,
    client_id: ClientId,
    email: &Email,
) -> Result<Option<Enrollment>> {
    let sql = match C::DIALECT {
        Dialect::Sqlite => concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollments WHERE client_id = $1 AND email = $2"
        ),
        Dialect::Postgres => concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollments WHERE client_id = $1 AND email = $2 FOR UPDATE"
        ),
    };
    let row: Option<EnrollmentRow> = conn
        .fetch_optional(sql, &args![client_id.to_string(), email.as_str()])
        .await?;
    row.map(Enrollment::try_from).transpose()
}

// After the macros, which they use.
mod attempts;
mod deliveries;
mod devices;
mod lookups;
mod sessions;

pub use attempts::{Attempt, Judge};

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

/// An ENABLE: the enrollment, when, and the revision of the application it was decided on
/// (none for an operator's load).
type Enabling = (NewEnrollment, i64, Option<Revision>);

/// A user as stored: client_id and email.
type StoredUser = (String, String);

/// The service's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    batches: Batches,
}

/// The batched writes (see [`batch`]), shared by every clone of a store.
#[derive(Clone, Default)]
struct Batches {
    sessions: std::sync::Arc<batch::Batcher<(Session, Revision), bool>>,
    attempts: std::sync::Arc<batch::Batcher<attempts::Call, Attempt>>,
    applications: std::sync::Arc<batch::Batcher<ClientId, Option<Application>>>,
    sessions_by_id: std::sync::Arc<batch::Batcher<Uuid, Option<Session>>>,
    sessions_of: std::sync::Arc<lookups::SessionsOf>,
    enrollments_by_user: std::sync::Arc<batch::Batcher<(ClientId, Email), Option<Enrollment>>>,
    devices_by_user: std::sync::Arc<batch::Batcher<(ClientId, Email), Vec<Device>>>,
    page_opens: std::sync::Arc<batch::Batcher<sessions::PageOpen, ()>>,
    deliveries: std::sync::Arc<batch::Batcher<deliveries::Recorded, ()>>,
    enrollments: std::sync::Arc<batch::Batcher<Enabling, ()>>,
    unenrollments: std::sync::Arc<batch::Batcher<(ClientId, Email, Revision), bool>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.pool {
            Pool::Sqlite(..) => "Store(sqlite)",
            Pool::Postgres(..) => "Store(postgres)",
        })
    }
}

impl Store {
    /// Serves `call`: on PostgreSQL with the other calls waiting at `batcher` (see [`batch`]),
    /// where a statement costs a round trip; on SQLite alone and at once, where it costs
    /// microseconds. `serve` gets the calls, in order, and gives each its result.
    async fn batched<In, Out, S, F>(
        &self,
        batcher: &std::sync::Arc<batch::Batcher<In, Out>>,
        call: In,
        serve: S,
    ) -> Result<Out>
    where
        In: Send + 'static,
        Out: Send + 'static,
        S: Fn(Store, Vec<In>) -> F + Send + 'static,
        F: std::future::Future<Output = Result<Vec<Result<Out>>>> + Send,
    {
        if let Pool::Sqlite(..) = self.pool {
            let mut results = serve(self.clone(), vec![call]).await?;
            return results
                .pop()
                .unwrap_or_else(|| Err(StoreError::Database("BUG: a call got no result".into())));
        }
        let store = self.clone();
        batcher
            .call(call, move |calls| serve(store.clone(), calls))
            .await
    }

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
                .foreign_keys(true)
                // Statement journals of multi-row writes in memory, not in temporary files
                // opened and deleted for each.
                .pragma("temp_store", "memory");
            let migrating = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&migrating)
                .await?;
            migrating.close().await;
            let sqlite = sqlite::Sqlite::open(options.get_filename())?;
            // Read-only: every write goes through the writer's thread. A write on a connection
            // of its own would wait for the write lock, which the writer under load releases
            // for microseconds between batches, then hold up the writer in turn (the worker's
            // prunes waited over a second, then stalled every write behind them).
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.read_only(true))
                .await?;
            Pool::Sqlite(pool, std::sync::Arc::new(sqlite))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool, std::sync::Arc::default())
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        Ok(Self {
            pool,
            batches: Batches::default(),
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Closes every connection, waiting for checked-out ones to come back and for the writes
    /// under way to be written.
    pub async fn close(&self) {
        if let Pool::Sqlite(_, sqlite) = &self.pool {
            sqlite.close().await;
        }
        on_pool!(self, pool => pool.close().await)
    }

    /// Stores `candidate` as the session-signing key unless one exists, and returns the one
    /// that is stored: every process on the database ends up with the same key.
    pub async fn ensure_session_key(
        &self,
        candidate: StoredSessionKey,
        now: i64,
    ) -> Result<StoredSessionKey> {
        let row: Option<StoredSessionKeyRow> = write_in!(self, conn => {
            conn.execute(
                "INSERT INTO session_keys (slot, kid, sealed_secret, created_at) VALUES (0, $1, $2, $3)
                 ON CONFLICT (slot) DO NOTHING",
                &args![candidate.kid, candidate.sealed_secret, now],
            )
            .await?;
            conn.fetch_optional("SELECT kid, sealed_secret FROM session_keys WHERE slot = 0", &[])
                .await
        })?;
        row.map(Into::into)
            .ok_or_else(|| StoreError::Corrupt("the session key was stored and is gone".to_owned()))
    }

    /// Registers an application.
    pub async fn insert_application(&self, app: &Application) -> Result<()> {
        let (ips, redirects) = settings_json(app);
        let row: Vec<db::Value<'static>> = args![
            app.client_id.to_string(),
            app.name.as_str().to_owned(),
            app.owner.as_ref().map(|owner| owner.as_str().to_owned()),
            ips,
            redirects,
            app.callback_url.to_string(),
            app.api_key_hash.as_bytes().to_vec(),
            app.sealed_callback_secret.clone(),
            app.active,
            app.created_at,
            app.revision.0
        ]
        .into();
        write_one!(self, conn => conn.execute(
            "INSERT INTO applications (client_id, name, owner_email, ip_allow_list, redirect_uris,
                 callback_url, api_key_hash, sealed_callback_secret, active, created_at, updated_at,
                 revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
            &row,
        ).await)?;
        Ok(())
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
        self.update_application(
            "active = $2, updated_at = $3",
            vec![client_id.to_string().into(), active.into(), now.into()],
        )
        .await
    }

    /// Replaces an application's API key; the old key stops working with this commit.
    /// `false` if there is no application with this id.
    pub async fn replace_api_key(
        &self,
        client_id: ClientId,
        hash: &ApiKeyHash,
        now: i64,
    ) -> Result<bool> {
        self.update_application(
            "api_key_hash = $2, updated_at = $3",
            vec![
                client_id.to_string().into(),
                hash.as_bytes().to_vec().into(),
                now.into(),
            ],
        )
        .await
    }

    /// Sets `set` (assignments such as `"active = $2"`) on the application named by `$1` of
    /// `args`, as a new revision of it (see [`Revision`]); whether there is one.
    async fn update_application(&self, set: &str, args: Vec<db::Value<'static>>) -> Result<bool> {
        self.change_application(
            format!("UPDATE applications SET {set}, revision = revision + 1 WHERE client_id = $1"),
            args,
        )
        .await
    }

    /// Runs `sql`, which changes or deletes the application named by its `$1`, and then has
    /// every process read applications again (see `sqlite::applications`; on PostgreSQL this
    /// process, while the others' copies are checked by revision as they are used); whether it
    /// changed a row. Every change to an application goes through here, every update through
    /// [`Store::update_application`].
    async fn change_application(&self, sql: String, args: Vec<db::Value<'static>>) -> Result<bool> {
        let changed = write_one!(self, conn => conn.execute(&sql, &args).await)?;
        match &self.pool {
            Pool::Sqlite(_, sqlite) => sqlite.applications().changed()?,
            // Other processes find out when a write names the old revision.
            Pool::Postgres(_, copies) => copies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear(),
        }
        Ok(changed == 1)
    }

    /// Stores a user's TOTP enrollment, replacing any earlier one together with its replay,
    /// failure and lock state (a new secret starts a new history) and its devices (which
    /// proved only the old secret), in one transaction, if its application is still at
    /// `revision` (the copy the caller decided on, see [`Store::application_copy`]); else
    /// [`StoreError::ApplicationChanged`], with nothing written. Concurrent calls share
    /// statements (see [`batch`]).
    pub async fn upsert_enrollment(
        &self,
        enrollment: &NewEnrollment,
        now: i64,
        revision: Revision,
    ) -> Result<()> {
        self.batched(
            &self.batches.enrollments,
            (enrollment.clone(), now, Some(revision)),
            |store, batch| async move { store.upsert_enrollment_rows(batch).await },
        )
        .await
    }

    /// Stores many enrollments at once, each as [`upsert_enrollment`](Self::upsert_enrollment)
    /// stores one (fresh state, no devices), in one transaction of multi-row statements:
    /// loading a million users takes seconds instead of a million commits. When a user appears
    /// more than once, the last one wins, as it would one by one. An operator's load, decided
    /// on no copy of the application: it names no revision.
    pub async fn upsert_enrollments(&self, enrollments: &[NewEnrollment], now: i64) -> Result<()> {
        self.upsert_enrollment_rows(enrollments.iter().map(|e| (e.clone(), now, None)).collect())
            .await?
            .into_iter()
            .collect()
    }

    /// [`upsert_enrollments`](Self::upsert_enrollments), each enabled at its own time and, if
    /// it names a revision, written only while its application is at it; each one's result.
    async fn upsert_enrollment_rows(&self, enrollments: Vec<Enabling>) -> Result<Vec<Result<()>>> {
        use SqlType::{BigInt, Bytes, Text};
        let users: Vec<StoredUser> = enrollments
            .iter()
            .map(|(e, ..)| (e.client_id.to_string(), e.email.as_str().to_owned()))
            .collect();
        // One statement may not touch a row twice (PostgreSQL refuses it): keep the last.
        let mut seen = std::collections::HashSet::with_capacity(enrollments.len());
        let mut distinct: Vec<Vec<db::Value<'static>>> = enrollments
            .into_iter()
            .rev()
            .filter(|(e, ..)| seen.insert((e.client_id, e.email.clone())))
            .map(|(enrollment, now, revision)| {
                args![
                    enrollment.client_id.to_string(),
                    enrollment.email.as_str().to_owned(),
                    enrollment.sealed_secret,
                    enrollment.params.algorithm().as_str(),
                    i64::from(enrollment.params.digits()),
                    i64::from(enrollment.params.period()),
                    now,
                    revision.map(|revision| revision.0),
                ]
                .into()
            })
            .collect();
        distinct.reverse();
        let written: Vec<StoredUser> = write_in!(self, conn => {
            let upsert = format!(
                concat!(
                    enrollment_insert!(),
                    " SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, \
                     NULL, 0, NULL, v.column7 FROM {} \
                     WHERE v.column8 IS NULL \
                     OR (SELECT a.revision FROM applications a WHERE a.client_id = v.column1) = v.column8 ",
                    enrollment_replace!(),
                    " RETURNING client_id, email"
                ),
                rows_source(
                    conn.dialect(),
                    &[Text, Text, Bytes, Text, BigInt, BigInt, BigInt, BigInt]
                )
            );
            // A new secret drops the devices that proved the old one: those of the users written.
            let delete = delete_rows(
                conn.dialect(),
                "devices",
                &[Text, Text],
                "devices.client_id = v.column1 AND devices.email = v.column2",
            );
            let mut written = Vec::with_capacity(distinct.len());
            for chunk in distinct.chunks(ENROLLMENTS_PER_STATEMENT) {
                let upserted: Vec<StoredUser> = fetch_rows(conn, &upsert, chunk).await?;
                let users: Vec<Vec<db::Value<'_>>> = upserted
                    .iter()
                    .map(|(client_id, email)| args![client_id, email].into())
                    .collect();
                execute_rows(conn, &delete, &users).await?;
                written.extend(upserted);
            }
            Ok(written)
        })?;
        let written: std::collections::HashSet<StoredUser> = written.into_iter().collect();
        Ok(users
            .iter()
            .map(|user| {
                if written.contains(user) {
                    Ok(())
                } else {
                    // Only a revision keeps a row from being written.
                    Err(StoreError::ApplicationChanged)
                }
            })
            .collect())
    }

    /// Removes a user's enrollment, and its secret and devices with it (by cascade), if its
    /// application is still at `revision` (as for
    /// [`upsert_enrollment`](Self::upsert_enrollment)); `false` if there was none. Concurrent
    /// calls share statements (see [`batch`]).
    pub async fn delete_enrollment(
        &self,
        client_id: ClientId,
        email: &Email,
        revision: Revision,
    ) -> Result<bool> {
        self.batched(
            &self.batches.unenrollments,
            (client_id, email.clone(), revision),
            Store::delete_enrollments,
        )
        .await
    }

    /// Deletes these users' enrollments where their applications are at the revision named;
    /// for each, whether it deleted one (a user named twice is deleted by the first), or
    /// [`StoreError::ApplicationChanged`].
    async fn delete_enrollments(
        self,
        users: Vec<(ClientId, Email, Revision)>,
    ) -> Result<Vec<Result<bool>>> {
        use SqlType::{BigInt, Text};
        let wanted: Vec<Vec<db::Value<'static>>> = users
            .iter()
            .map(|(client_id, email, revision)| {
                args![client_id.to_string(), email.as_str().to_owned(), revision.0].into()
            })
            .collect();
        let (deleted, revisions): (Vec<StoredUser>, Vec<(String, i64)>) = write_in!(self, conn => {
            const USER: &[SqlType] = &[Text, Text, BigInt];
            let delete = text_per_dialect!(conn.dialect(), delete_rows(
                conn.dialect(),
                "enrollments",
                USER,
                "enrollments.client_id = v.column1 AND enrollments.email = v.column2
                     AND (SELECT a.revision FROM applications a WHERE a.client_id = v.column1)
                         = v.column3",
            ) + " RETURNING client_id, email");
            let deleted: Vec<StoredUser> = fetch_rows(conn, delete, &wanted).await?;
            if deleted.len() == wanted.len() {
                return Ok((deleted, Vec::new()));
            }
            // Not enrolled, or the application changed: the revisions tell.
            let revisions = format!(
                "SELECT a.client_id, a.revision FROM {}
                 JOIN applications a ON a.client_id = v.column1",
                rows_source(conn.dialect(), USER)
            );
            let revisions: Vec<(String, i64)> = fetch_rows(conn, &revisions, &wanted).await?;
            Ok((deleted, revisions))
        })?;
        let revisions: std::collections::HashMap<String, i64> = revisions.into_iter().collect();
        let mut deleted: std::collections::HashSet<StoredUser> = deleted.into_iter().collect();
        Ok(users
            .iter()
            .map(|(client_id, email, revision)| {
                let (client_id, email) = (client_id.to_string(), email.as_str().to_owned());
                if deleted.remove(&(client_id.clone(), email)) {
                    Ok(true)
                } else if revisions.get(&client_id) == Some(&revision.0) {
                    Ok(false)
                } else {
                    Err(StoreError::ApplicationChanged)
                }
            })
            .collect())
    }

    /// How many sessions an application has had.
    pub async fn session_count(&self, client_id: ClientId) -> Result<u64> {
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE client_id = $1")
            .bind(client_id.to_string())
            .fetch_one(pool)
            .await?);
        u64::try_from(count).map_err(|e| StoreError::Corrupt(format!("session count: {e}")))
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
        let (session, session_token) = (session.clone(), session_token.to_owned());
        write_in!(self, conn => Ok(finish(conn, &session, status, now, &session_token, None).await?.is_some()))
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

    /// Claims the callback that is due soonest (at or before `now`) for delivery until
    /// `lease_until`, counting the attempt. Several workers, in several processes, never claim
    /// the same one while a lease holds.
    pub async fn claim_due_callback(&self, now: i64, lease_until: i64) -> Result<Option<Callback>> {
        // PostgreSQL skips rows another worker is claiming instead of waiting for them.
        let row: Option<CallbackRow> = write_one!(self, conn => {
            let sql = match conn.dialect() {
                Dialect::Sqlite => concat!(
                    "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 WHERE id = (",
                    "SELECT id FROM callbacks WHERE status = 'PENDING' AND next_attempt_at <= $1 ",
                    "AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT 1) ",
                    "RETURNING ",
                    callback_columns!()
                ),
                Dialect::Postgres => concat!(
                    "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 WHERE id = (",
                    "SELECT id FROM callbacks WHERE status = 'PENDING' AND next_attempt_at <= $1 ",
                    "AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT 1 ",
                    "FOR UPDATE SKIP LOCKED) RETURNING ",
                    callback_columns!()
                ),
            };
            conn.fetch_optional(sql, &args![now, lease_until]).await
        })?;
        row.map(Callback::try_from).transpose()
    }

    /// Claims one callback by id, if it is pending and nobody holds it.
    pub async fn claim_callback(
        &self,
        id: Uuid,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Callback>> {
        let row: Option<CallbackRow> = write_one!(self, conn => conn.fetch_optional(concat!(
            "UPDATE callbacks SET lease_until = $2, attempts = attempts + 1 ",
            "WHERE id = $3 AND status = 'PENDING' AND (lease_until IS NULL OR lease_until <= $1) ",
            "RETURNING ", callback_columns!()
        ), &args![now, lease_until, id.to_string()]).await)?;
        row.map(Callback::try_from).transpose()
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

#[cfg(test)]
mod tests {
    use super::row_parameters;

    #[test]
    fn a_rows_values_are_its_parameters_on_sqlite() {
        assert_eq!(
            row_parameters(
                "a = v.column2, b = COALESCE(v.column10, t.b), c = dev.column1 \
                 WHERE t.id = v.column1 AND x.v.column3 = v.column"
            ),
            "a = $2, b = COALESCE($10, t.b), c = dev.column1 \
             WHERE t.id = $1 AND x.v.column3 = v.column"
        );
    }
}
