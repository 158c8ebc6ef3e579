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
//! What is not yet written against [`Conn`] (the console, the app API's reads) still runs on
//! sqlx's pool beside this, as do the migrations; both drivers use the one SQLite library
//! linked into the process, so their locks see each other.

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

/// How long a connection waits for another's write lock before it gives up: sqlx's pool
/// writes beside the writer, and another process may use the file.
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
        let value = read(&mut SqliteConn(&connection));
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
        self.writer.run(job).await
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
pub(crate) struct SqliteConn<'c>(&'c rusqlite::Connection);

impl SpeaksDialect for SqliteConn<'_> {
    const DIALECT: Dialect = Dialect::Sqlite;
}

impl SqliteConn<'_> {
    /// `sql` prepared (once per connection), its `$n` placeholders bound to `args[n - 1]`.
    fn prepared(
        &self,
        sql: &str,
        args: &[Value<'_>],
    ) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        let mut statement = self.0.prepare_cached(sql)?;
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

    /// [`Conn::execute`], synchronously.
    pub(crate) fn execute_now(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        let changed = self.prepared(sql, args)?.raw_execute()?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    /// [`Conn::fetch_all`], synchronously.
    pub(crate) fn fetch_all_now<R: Row>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Vec<R>> {
        let mut statement = self.prepared(sql, args)?;
        let mut rows = statement.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            all.push(R::from_sqlite(row)?);
        }
        Ok(all)
    }

    /// [`Conn::fetch_optional`], synchronously.
    pub(crate) fn fetch_optional_now<R: Row>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<R>> {
        let mut statement = self.prepared(sql, args)?;
        let mut rows = statement.raw_query();
        Ok(rows.next()?.map(R::from_sqlite).transpose()?)
    }

    /// Runs statements that take no arguments, such as `BEGIN`.
    fn run(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.0.prepare_cached(sql)?.raw_execute().map(drop)
    }
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
