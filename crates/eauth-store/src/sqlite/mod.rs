//! SQLite, run synchronously: reads on the caller's thread, writes on one writing thread that
//! commits whatever arrived together in one transaction ([`writer`]).
//!
//! Why not through sqlx, as PostgreSQL is: sqlx's SQLite driver runs each connection on a
//! thread of its own and hands every statement, and every row of its answer, across threads.
//! Under load that hand-off, a wake-up of another thread each way, cost more than SQLite's
//! own work: `eauth-bench` measured the service's CPU time per session-token at 95 µs with
//! every statement on sqlx and 64 µs with the session's insert and the application's read on
//! rusqlite, and found a third of the process's time in the scheduler. A read by primary key
//! takes SQLite a few µs from its page cache, less than a wake-up, so reads run where they are
//! asked for. Writes wait for an fsync, so they go to the writer's thread, a batch at a time.
//!
//! The reads not yet written against [`Conn`] (the console's, the app API's) still run on
//! sqlx's pool beside this, read-only, and the migrations before it; both drivers use the one
//! SQLite library linked into the process, so their locks see each other.

mod applications;
mod writer;

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::Mutex,
    task::{Context, Poll, Waker},
    time::Duration,
};

use rusqlite::OpenFlags;

use crate::{
    Dialect, Result, SpeaksDialect, StoreError,
    db::{Conn, Row, Value},
};

/// How long a connection waits for another's lock before it gives up: another process may
/// use the file (`eauthd admin`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements kept prepared per connection: every statement of the hot paths, with room.
const PREPARED_STATEMENTS: usize = 64;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation)
                if matches!(
                    error.sqlite_error().map(|e| e.extended_code),
                    Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
                        | Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                ) =>
            {
                Self::Conflict
            }
            _ => Self::Database(Box::new(error)),
        }
    }
}

/// The SQLite database: the writer, and connections for reads.
pub(crate) struct Sqlite {
    writer: writer::Writer,
    applications: applications::Applications,
    readers: Mutex<Vec<rusqlite::Connection>>,
    path: PathBuf,
}

/// Opens a connection with the settings every connection of the store has.
fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    // FULL: a commit is on disk before it returns, as the API promises ("recorded before
    // SUCCESS"). Statement journals of multi-row writes in memory, not in temporary files.
    connection.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(connection)
}

impl Sqlite {
    /// Opens the database at `path`, which the migrations have set up (WAL journal).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            writer: writer::Writer::start(path)?,
            applications: applications::Applications::open(path)?,
            readers: Mutex::new(Vec::new()),
            path: path.to_owned(),
        })
    }

    /// Runs `read` on a connection of its own, on this thread, and returns what it read: the
    /// state of the last commit before it began.
    pub(crate) fn read<T>(&self, read: impl FnOnce(&mut SqliteConn<'_>) -> Result<T>) -> Result<T> {
        let idle = self.idle_readers().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let value = read(&mut SqliteConn::new(&connection));
        self.idle_readers().push(connection);
        value
    }

    fn idle_readers(&self) -> std::sync::MutexGuard<'_, Vec<rusqlite::Connection>> {
        // Only pushes and pops happen under the lock: nothing can panic there.
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `job` as one atomic write in the writer's next batch (see [`writer`]); its result
    /// once the batch is on disk.
    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConn<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.run(writer::Atomicity::Savepoint, job).await
    }

    /// [`Sqlite::write`] for a job that changes the database with one statement at most: no
    /// savepoint (see [`writer`]).
    pub(crate) async fn write_one<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConn<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.run(writer::Atomicity::OneStatement, job).await
    }

    /// [`Sqlite::write`] for a job that fails, if at all, before its first change: no savepoint
    /// (see [`writer`]).
    pub(crate) async fn write_checked<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConn<'_>) -> Result<T> + Send + 'static,
    {
        self.writer.run(writer::Atomicity::ChecksFirst, job).await
    }

    /// The applications read once per change (see [`applications`]).
    pub(crate) fn applications(&self) -> &applications::Applications {
        &self.applications
    }

    /// Finishes the writes queued so far and stops the writer; writes after this fail.
    pub(crate) async fn close(&self) {
        self.writer.stop().await;
        self.idle_readers().clear();
    }
}

/// A SQLite connection, for statements written for both backends (see [`Conn`]).
pub(crate) struct SqliteConn<'c> {
    connection: &'c rusqlite::Connection,
    /// Statements that changed the database since the writer last set this to 0.
    changes: usize,
}

impl<'c> SqliteConn<'c> {
    fn new(connection: &'c rusqlite::Connection) -> Self {
        Self {
            connection,
            changes: 0,
        }
    }
}

impl SpeaksDialect for SqliteConn<'_> {
    const DIALECT: Dialect = Dialect::Sqlite;
}

impl SqliteConn<'_> {
    /// [`Conn::execute`], synchronously.
    pub(crate) fn execute_now(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        let mut statement = prepared(self.connection, sql, args)?;
        let changed = statement.raw_execute()?;
        self.changes += usize::from(!statement.readonly());
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    /// [`Conn::fetch_all`], synchronously.
    pub(crate) fn fetch_all_now<R: Row>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Vec<R>> {
        let mut statement = prepared(self.connection, sql, args)?;
        let changes = !statement.readonly();
        let mut rows = statement.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            all.push(R::from_sqlite(row)?);
        }
        self.changes += usize::from(changes);
        Ok(all)
    }

    /// [`Conn::fetch_optional`], synchronously.
    pub(crate) fn fetch_optional_now<R: Row>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<R>> {
        let mut statement = prepared(self.connection, sql, args)?;
        let changes = !statement.readonly();
        let mut rows = statement.raw_query();
        let row = rows.next()?.map(R::from_sqlite).transpose()?;
        // A change with RETURNING is made whole at its first row: the others are only read.
        self.changes += usize::from(changes);
        Ok(row)
    }

    /// Runs statements that take no arguments, such as `BEGIN`.
    fn run(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.connection.prepare_cached(sql)?.raw_execute().map(drop)
    }
}

/// `sql` prepared (once per connection), its `$n` placeholders bound to `args[n - 1]`.
fn prepared<'c>(
    connection: &'c rusqlite::Connection,
    sql: &str,
    args: &[Value<'_>],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = connection.prepare_cached(sql)?;
    // SQLite numbers `$n` placeholders in the order they first appear, not by n.
    for index in 1..=statement.parameter_count() {
        let arg = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| args.get(n.checked_sub(1)?))
            .ok_or_else(|| rusqlite::Error::InvalidParameterCount(index, args.len()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(statement)
}

impl Conn for SqliteConn<'_> {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        self.execute_now(sql, args)
    }

    async fn fetch_all<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<R>> {
        self.fetch_all_now(sql, args)
    }

    async fn fetch_optional<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Option<R>> {
        self.fetch_optional_now(sql, args)
    }
}

/// Runs a body written against [`Conn`] to its end, here and now. A SQLite connection answers
/// at once, so a body that awaits nothing but its connection is done after one poll.
pub(crate) fn now<T>(body: impl Future<Output = T>) -> T {
    let mut body = std::pin::pin!(body);
    match body.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("BUG: a SQLite body awaited something other than SQLite"),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use eauth_core::{ClientId, Email};
    use uuid::Uuid;

    use crate::Store;

    /// Every write goes through the writer's thread: one made beside it would wait for the
    /// write lock, then hold the writer up. The other driver's pool cannot write at all.
    #[tokio::test]
    async fn only_the_writer_writes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("eauth.db").display());
        let store = Store::connect(&url).await.expect("store");
        let crate::Pool::Sqlite(pool, _) = &store.pool else {
            unreachable!("a SQLite URL")
        };
        let refused = sqlx::query("DELETE FROM app_nonces").execute(pool).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("readonly")),
            "{refused:?}"
        );
        assert!(
            store
                .remember_nonce("signer", "nonce", 1)
                .await
                .expect("through the writer")
        );
    }

    /// Migration 0010 rebuilds sessions and enrollments with foreign keys off: what pointed at
    /// them must still point at them, with every column, and still go when they go.
    #[tokio::test]
    async fn sessions_and_enrollments_keep_their_rows_and_links_when_stored_by_key() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("eauth.db");
        let url = format!("sqlite://{}", path.display());
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .expect("URL")
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .foreign_keys(true);
        let before = sqlx::SqlitePool::connect_with(options)
            .await
            .expect("connect");
        sqlx::migrate!("./migrations/sqlite")
            .run_to(9, &before)
            .await
            .expect("migrations up to 0009");
        let (client_id, session_id, device_id) =
            (ClientId::generate(), Uuid::now_v7(), Uuid::new_v4());
        let email = Email::parse("user@example.com").expect("email");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO applications (client_id, name, ip_allow_list, redirect_uris, callback_url,
                 api_key_hash, sealed_callback_secret, active, created_at, updated_at)
             VALUES ('{client_id}', 'Portal', '[\"127.0.0.1\"]', '[\"https://portal.example.com/cb\"]',
                 'https://portal.example.com/eauth', x'00', x'01', 1, 1, 1);
             INSERT INTO enrollments (client_id, email, sealed_secret, algorithm, digits, period,
                 last_used_step, consecutive_failures, locked_at, enabled_at, last_failure_at,
                 last_approved_at)
             VALUES ('{client_id}', 'user@example.com', x'0203', 'SHA256', 8, 60, 42, 3, NULL, 5, 6, 7);
             INSERT INTO devices (id, client_id, email, public_key, name, created_at)
             VALUES ('{device_id}', '{client_id}', 'user@example.com', zeroblob(32), 'Phone', 8);
             INSERT INTO sessions (id, client_id, email, status, created_at, expires_at, finished_at,
                 failed_attempts, signin_method, source_ip, push_number, push_failures)
             VALUES ('{session_id}', '{client_id}', 'user@example.com', 'APPROVED', 10, 130, 20,
                 2, 'popup', '203.0.113.9', 42, 1);
             INSERT INTO callbacks (id, session_id, client_id, approved, session_token, status,
                 attempts, next_attempt_at, created_at)
             VALUES ('{}', '{session_id}', '{client_id}', 1, 'token', 'PENDING', 0, 20, 20);",
            Uuid::now_v7()
        )))
        .execute(&before)
        .await
        .expect("rows of every kind");
        before.close().await;

        let store = Store::connect(&url).await.expect("migration 0010");
        let enrollment = store
            .enrollment(client_id, &email)
            .await
            .expect("read")
            .expect("the enrollment");
        assert_eq!(
            (
                enrollment.sealed_secret.as_slice(),
                enrollment.params.digits(),
                enrollment.params.period(),
                enrollment.last_used_step,
                enrollment.consecutive_failures,
                enrollment.last_failure_at,
                enrollment.last_approved_at,
            ),
            (&[2u8, 3][..], 8, 60, Some(42), 3, Some(6), Some(7))
        );
        let session = store
            .session(session_id)
            .await
            .expect("read")
            .expect("the session");
        assert_eq!(
            (
                session.finished_at,
                session.failed_attempts,
                session.source_ip.as_deref(),
                session.push_failures
            ),
            (Some(20), 2, Some("203.0.113.9"), 1)
        );
        assert_eq!(
            store
                .devices_of(client_id, &email)
                .await
                .expect("read")
                .len(),
            1
        );
        assert!(
            store
                .callback_of_session(session_id)
                .await
                .expect("read")
                .is_some()
        );
        let check = rusqlite::Connection::open(&path).expect("open");
        let broken: i64 = check
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .expect("foreign key check");
        assert_eq!(broken, 0, "every row still points at an existing row");

        // The links still cascade: the application takes everything with it.
        assert!(store.delete_application(client_id).await.expect("delete"));
        assert!(
            store
                .enrollment(client_id, &email)
                .await
                .expect("read")
                .is_none()
        );
        assert!(store.session(session_id).await.expect("read").is_none());
        assert!(
            store
                .callback_of_session(session_id)
                .await
                .expect("read")
                .is_none()
        );
        let devices: i64 = check
            .query_row("SELECT COUNT(*) FROM devices", [], |row| row.get(0))
            .expect("count");
        assert_eq!(devices, 0);
        store.close().await;
    }
}
