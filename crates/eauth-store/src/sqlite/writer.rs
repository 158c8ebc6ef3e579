//! Group commit: every write of the store runs on one thread that owns the writing
//! connection, in transactions shared by the writes that arrive together, so that one fsync
//! makes a whole batch durable.
//!
//! A durable SQLite commit costs an fsync of the WAL (up to a few ms under load), and SQLite
//! admits one writer at a time: one commit per request caps the service at a few hundred
//! writes per second. Here the writer takes every job that is waiting (up to [`MAX_BATCH`]),
//! runs them one after the other inside one `BEGIN IMMEDIATE ... COMMIT`, and only after the
//! commit returns tells each job's caller its result. Durability is unchanged
//! (`synchronous = FULL`: nothing is acknowledged before its commit is on disk); what is
//! shared is the cost. Batches form by themselves: while one commits, the next one's jobs
//! queue up, so there is no timer and no added latency when the service is idle.
//!
//! Each job runs inside a savepoint of its own, so it is atomic as if it had its own
//! transaction: a job that fails is rolled back alone, and the others of its batch commit. A
//! failed commit fails every job of its batch. A job of one statement that changes something
//! ([`Atomicity::OneStatement`]) needs no savepoint, SQLite undoing a failed statement itself,
//! and neither does a job that checks first and then makes changes that only a fault of the
//! database can fail ([`Atomicity::ChecksFirst`]): a savepoint copies every page the job
//! touches into its journal first, a tenth of the writer's time with new sessions (perf), 8 %
//! of a code verification's instructions. Should such a job fail after a change of its own
//! succeeded, its batch is rolled back whole. Jobs run on the writer's thread, not the
//! caller's, so a request cancelled by its client cannot leave half a job behind.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use rusqlite::OpenFlags;
use tokio::sync::oneshot;

use super::{SqliteConn, open};
use crate::{Result, StoreError};

/// Jobs per transaction at most: enough to absorb every request of a busy server in one
/// fsync, few enough that one batch does not hold the write lock for long.
const MAX_BATCH: usize = 256;

/// How often, at most, the WAL is checkpointed while there are writes (see [`Checkpointer`]),
/// so that it stays about a second's writes long.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A background checkpoint pass that copied no more WAL frames than this (4 MiB of pages)
/// leaves the rest to the writer: about as many come in while a pass runs, so what the writer
/// copies, holding its next batch meanwhile, takes a few milliseconds (unless a long read held
/// frames back; the writer logs each copy at debug).
const HAND_OVER_AT_FRAMES: i64 = 1024;

/// Tells a job's caller its result, given why its batch did not commit, if it did not.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// What a job leaves behind once it ran.
struct Ran {
    failed: bool,
    reply: Reply,
}

/// How a job is made atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Atomicity {
    /// In a savepoint of its own.
    Savepoint,
    /// It changes the database with one statement at most (and reads as it likes).
    OneStatement,
    /// It fails, if at all, before its first change: it reads and checks first, then makes
    /// changes that only a fault of the database can fail.
    ChecksFirst,
}

struct Job {
    atomicity: Atomicity,
    run: Box<dyn FnOnce(&mut SqliteConn<'_>) -> Ran + Send>,
}

enum Message {
    Job(Job),
    /// Finish what is queued, close the connection, then say so.
    Stop(oneshot::Sender<()>),
}

/// A write that was rolled back because its batch failed.
#[derive(Debug, thiserror::Error)]
#[error("the write was rolled back with its batch: {0}")]
struct BatchFailed(String);

/// The handle to the writing thread.
pub(super) struct Writer {
    // Unbounded: a job is queued from async code, which must not block. Callers are
    // limited upstream (every API and page route has a concurrency limit).
    jobs: mpsc::Sender<Message>,
}

impl Writer {
    /// Opens the writing connection and starts its thread, which ends with [`Writer::stop`]
    /// or when the handle is dropped.
    pub(super) fn start(path: &Path) -> Result<Self> {
        Self::start_checkpointing_every(path, CHECKPOINT_EVERY)
    }

    fn start_checkpointing_every(path: &Path, every: Duration) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = open(path, flags)?;
        // The writer never checkpoints itself: a checkpoint inside a commit copies the WAL into
        // the database and syncs it, holding every caller of that batch for tens of ms.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::start(open(path, flags)?, every)?;
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("eauth-sqlite-writer".into())
            .spawn(move || run(&connection, &queue, &checkpointer))
            .map_err(|error| StoreError::Database(Box::new(error)))?;
        Ok(Self { jobs })
    }

    /// Runs `job` in the next batch; its result once the batch committed.
    pub(super) async fn run<T, F>(&self, atomicity: Atomicity, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConn<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |connection: &mut SqliteConn<'_>| {
            let result = job(connection);
            Ran {
                failed: result.is_err(),
                reply: Box::new(move |batch_error| {
                    let _ = tx.send(match (result, batch_error) {
                        (Err(own), _) => Err(own),
                        (Ok(_), Some(error)) => Err(StoreError::Database(Box::new(BatchFailed(
                            error.to_owned(),
                        )))),
                        (Ok(value), None) => Ok(value),
                    });
                }),
            }
        });
        let job = Job { atomicity, run };
        self.jobs.send(Message::Job(job)).map_err(|_| stopped())?;
        // The job was dropped unrun: its batch could not even begin (logged by the writer).
        rx.await.map_err(|_| stopped())?
    }

    /// Runs what is queued, then stops.
    pub(super) async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Message::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the database writer is not running".into())
}

/// The writer's loop: a batch of whatever is waiting, then the next.
fn run(
    connection: &rusqlite::Connection,
    queue: &mpsc::Receiver<Message>,
    checkpointer: &Checkpointer,
) {
    let mut connection = SqliteConn::new(connection);
    let mut stopped = None;
    while let Ok(first) = queue.recv() {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        for message in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
            match message {
                Message::Job(job) => jobs.push(job),
                Message::Stop(done) => {
                    stopped = Some(done);
                    break;
                }
            }
            if jobs.len() == MAX_BATCH {
                break;
            }
        }
        let mut jobs = jobs.into_iter();
        // A batch whose transaction fails leaves the jobs it had not run for the next one.
        while jobs.len() > 0 && commit_batch(&mut connection, &mut jobs) > 0 {}
        checkpointer.after_batch(connection.connection);
        if stopped.is_some() {
            break;
        }
    }
    // Dropping the connection after this closes it; waiting callers are told they may go.
    if let Some(done) = stopped {
        let _ = done.send(());
    }
}

/// Runs jobs from `jobs` in one transaction, each in a savepoint of its own, then commits (or
/// rolls back) and replies to every job that ran; returns how many ran.
fn commit_batch(
    connection: &mut SqliteConn<'_>,
    jobs: &mut impl ExactSizeIterator<Item = Job>,
) -> usize {
    let started = Instant::now();
    if let Err(error) = connection.run("BEGIN IMMEDIATE") {
        // Without a transaction nothing can run: the callers get an error when their jobs
        // are dropped.
        tracing::error!(error = %error, "cannot begin a write transaction");
        jobs.for_each(drop);
        return 0;
    }
    let mut replies = Vec::with_capacity(jobs.len());
    let mut broken = None;
    for job in jobs.by_ref() {
        let savepoint = job.atomicity == Atomicity::Savepoint;
        if savepoint && let Err(error) = connection.run("SAVEPOINT job") {
            broken = Some(format!("a savepoint failed: {error}"));
            break;
        }
        connection.changes = 0;
        let ran = (job.run)(connection);
        replies.push(ran.reply);
        let ended = match (savepoint, ran.failed) {
            (true, true) => connection
                .run("ROLLBACK TO job")
                .and_then(|()| connection.run("RELEASE job"))
                .map_err(|error| format!("a savepoint failed: {error}")),
            (true, false) => connection
                .run("RELEASE job")
                .map_err(|error| format!("a savepoint failed: {error}")),
            (false, true) if connection.changes > 0 => {
                Err("a job without a savepoint failed after a change of its own".to_owned())
            }
            (false, _) => Ok(()),
        };
        debug_assert!(
            job.atomicity != Atomicity::OneStatement || connection.changes <= 1,
            "BUG: a job of one statement made {} changes",
            connection.changes
        );
        if let Err(error) = ended {
            broken = Some(error);
            break;
        }
    }
    let ran = Instant::now();
    let outcome = match broken {
        Some(error) => Err(error),
        None => connection
            .run("COMMIT")
            .map_err(|error| format!("commit failed: {error}")),
    };
    if let Err(error) = &outcome {
        tracing::error!(error = %error, "a write transaction failed");
        // After a failed COMMIT SQLite may have rolled back already; then this fails harmlessly.
        let _ = connection.run("ROLLBACK");
    }
    let count = replies.len();
    tracing::debug!(
        jobs = count,
        run_us = u64::try_from((ran - started).as_micros()).unwrap_or(u64::MAX),
        commit_us = u64::try_from(ran.elapsed().as_micros()).unwrap_or(u64::MAX),
        "write batch"
    );
    let error = outcome.err();
    for reply in replies {
        reply(error.as_deref());
    }
    count
}

/// Keeps the WAL short under continuous writes, without holding the writer for long.
///
/// SQLite writes the WAL over from its start only when a write transaction begins with every
/// frame already copied into the database. A checkpoint beside the writer never gets there
/// while writes go on (each batch adds frames while it copies): the WAL grew by every write,
/// 35 MB a second in the benchmark, and each commit extended the file, so that its fdatasync
/// also committed the file system's journal. So the copying is done in two steps: a thread of
/// its own copies the bulk, pass after pass, until a pass finds little new; then the writer,
/// between two batches, copies that little itself, and its next batch starts the WAL over.
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    /// Set by the thread when what is left to copy is small enough for the writer.
    caught_up: Arc<AtomicBool>,
    every: Duration,
    last: std::cell::Cell<Instant>,
}

/// What one `PRAGMA wal_checkpoint` reported.
#[derive(Debug, Clone, Copy)]
struct Checkpointed {
    /// Frames in the WAL when it began.
    frames: i64,
    /// Of those, the frames that are now in the database.
    copied: i64,
}

fn checkpoint(connection: &rusqlite::Connection) -> rusqlite::Result<Checkpointed> {
    // PASSIVE: never waits for readers or the writer; copies what they allow.
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Checkpointed {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

impl Checkpointer {
    fn start(connection: rusqlite::Connection, every: Duration) -> Result<Self> {
        // One wake-up waiting at most: a checkpoint asked for while one runs is the next one.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let caught_up = Arc::new(AtomicBool::new(false));
        let signal = caught_up.clone();
        std::thread::Builder::new()
            .name("eauth-sqlite-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    let mut copied_before = 0;
                    loop {
                        match checkpoint(&connection) {
                            // A pass that copied little means little comes in while one runs.
                            Ok(pass) if pass.copied - copied_before <= HAND_OVER_AT_FRAMES => {
                                signal.store(true, Ordering::Release);
                                break;
                            }
                            Ok(pass) => copied_before = pass.copied,
                            Err(error) => {
                                tracing::warn!(error = %error, "cannot checkpoint the WAL");
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|error| StoreError::Database(Box::new(error)))?;
        Ok(Self {
            wake,
            caught_up,
            every,
            last: std::cell::Cell::new(Instant::now()),
        })
    }

    /// Between two batches, on the writer's thread: copies what the thread left, or wakes
    /// the thread if the last checkpoint was long enough ago.
    fn after_batch(&self, connection: &rusqlite::Connection) {
        if self.caught_up.swap(false, Ordering::Acquire) {
            let started = Instant::now();
            match checkpoint(connection) {
                Ok(pass) => tracing::debug!(
                    frames = pass.frames,
                    copied = pass.copied,
                    us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "WAL checkpoint by the writer"
                ),
                Err(error) => tracing::warn!(error = %error, "cannot checkpoint the WAL"),
            }
            self.last.set(Instant::now());
        } else if self.last.get().elapsed() >= self.every {
            self.last.set(Instant::now());
            let _ = self.wake.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::sqlite::Sqlite;

    async fn database() -> (Sqlite, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.db");
        let setup = rusqlite::Connection::open(&path).expect("open");
        setup
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER PRIMARY KEY);")
            .expect("create");
        (Sqlite::open(&path).expect("the store's connections"), dir)
    }

    fn insert(db: &std::sync::Arc<Sqlite>, v: i64) -> impl Future<Output = Result<()>> + use<> {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                conn.execute_now("INSERT INTO t (v) VALUES ($1)", &args![v])?;
                Ok(())
            })
            .await
        }
    }

    fn stored(db: &Sqlite) -> Vec<i64> {
        db.read(|conn| conn.fetch_all_now::<(i64,)>("SELECT v FROM t ORDER BY v", &[]))
            .expect("select")
            .into_iter()
            .map(|(v,)| v)
            .collect()
    }

    /// A job that holds the writer from when it starts (`started`) until `release` is sent,
    /// so that the jobs queued meanwhile form one batch.
    struct Hold {
        release: std::sync::mpsc::Sender<()>,
        started: oneshot::Receiver<()>,
        done: tokio::task::JoinHandle<Result<()>>,
    }

    async fn hold(db: &std::sync::Arc<Sqlite>) -> Hold {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let db = db.clone();
        let done = queued(async move {
            db.write(move |_| {
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            })
            .await
        })
        .await;
        Hold {
            release,
            started: running,
            done,
        }
    }

    /// Queues `write` behind a held batch, in order.
    async fn queued<T: Send + 'static>(
        write: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let handle = tokio::spawn(write);
        // The spawned task reaches the channel before the next one is spawned.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        handle
    }

    /// Runs `job` in one batch between an insert of 1 and an insert of 2: the three results,
    /// and what is stored afterwards.
    async fn around<T, F>(
        atomicity: Atomicity,
        job: F,
    ) -> (Result<()>, Result<T>, Result<()>, Vec<i64>)
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConn<'_>) -> Result<T> + Send + 'static,
    {
        let (db, _dir) = database().await;
        let db = std::sync::Arc::new(db);
        let held = hold(&db).await;
        held.started.await.expect("the holding job runs");
        let before = queued(insert(&db, 1)).await;
        let middle = queued({
            let db = db.clone();
            async move { db.writer.run(atomicity, job).await }
        })
        .await;
        let after = queued(insert(&db, 2)).await;
        held.release.send(()).expect("release");
        let _ = held.done.await.expect("join");
        let results = (
            before.await.expect("join"),
            middle.await.expect("join"),
            after.await.expect("join"),
        );
        (results.0, results.1, results.2, stored(&db))
    }

    #[tokio::test]
    async fn a_failed_job_is_rolled_back_alone_and_the_rest_of_its_batch_commits() {
        // A job that wrote before it failed: what it wrote must go with it, and only that.
        let (before, failed, after, stored) = around(Atomicity::Savepoint, |conn| {
            conn.execute_now("INSERT INTO t (v) VALUES (3)", &[])?;
            conn.execute_now("INSERT INTO t (v) VALUES (1)", &[])?;
            Ok(())
        })
        .await;
        assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
        before.expect("the job before the failure commits");
        after.expect("the job after the failure commits");
        assert_eq!(stored, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_job_of_one_statement_that_fails_changes_nothing_and_its_batch_commits() {
        let (before, failed, after, stored) = around(Atomicity::OneStatement, |conn| {
            // Two rows, the second a duplicate: SQLite undoes the first itself.
            conn.execute_now("INSERT INTO t (v) VALUES (5), (1)", &[])?;
            Ok(())
        })
        .await;
        assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
        before.expect("the job before commits");
        after.expect("the job after commits");
        assert_eq!(stored, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_job_of_one_statement_that_fails_after_its_change_takes_its_batch_down() {
        let (before, failed, after, stored) = around(Atomicity::OneStatement, |conn| {
            conn.execute_now("INSERT INTO t (v) VALUES (7)", &[])?;
            conn.fetch_all_now::<(i64,)>("SELECT nothing FROM nowhere", &[])?;
            Ok(())
        })
        .await;
        assert!(failed.is_err());
        assert!(before.is_err(), "rolled back with its batch");
        after.expect("the job after runs in the next batch");
        assert_eq!(stored, vec![2]);
    }

    #[tokio::test]
    async fn a_job_that_fails_after_its_changes_without_a_savepoint_takes_its_batch_down() {
        // Half a job must never commit, not even when it broke its promise to fail first.
        let (before, failed, after, stored) = around(Atomicity::ChecksFirst, |conn| {
            conn.execute_now("INSERT INTO t (v) VALUES (7)", &[])?;
            conn.execute_now("INSERT INTO t (v) VALUES (1)", &[])?;
            Ok(())
        })
        .await;
        assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");
        assert!(before.is_err(), "rolled back with its batch");
        after.expect("the job after runs in the next batch");
        assert_eq!(stored, vec![2]);
    }

    #[tokio::test]
    async fn a_job_that_fails_before_its_changes_without_a_savepoint_leaves_its_batch() {
        let (before, failed, after, stored) = around(Atomicity::ChecksFirst, |conn| {
            conn.fetch_all_now::<(i64,)>("SELECT nothing FROM nowhere", &[])?;
            conn.execute_now("INSERT INTO t (v) VALUES (7)", &[])?;
            Ok(())
        })
        .await;
        assert!(failed.is_err());
        before.expect("the job before commits");
        after.expect("the job after commits");
        assert_eq!(stored, vec![1, 2]);
    }

    #[tokio::test]
    async fn writes_queued_together_all_commit_and_each_caller_gets_its_own_result() {
        let (db, _dir) = database().await;
        let db = std::sync::Arc::new(db);
        let held = hold(&db).await;
        held.started.await.expect("the holding job runs");
        let mut writes = Vec::new();
        for v in 1..=50 {
            writes.push(queued(insert(&db, v)).await);
        }
        held.release.send(()).expect("release");
        held.done
            .await
            .expect("join")
            .expect("the holding job commits");
        for write in writes {
            write.await.expect("join").expect("each write commits");
        }
        assert_eq!(stored(&db), (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_write_is_neither_reported_nor_visible_before_its_batch_commits() {
        let (db, _dir) = database().await;
        let db = std::sync::Arc::new(db);
        let first = hold(&db).await;
        first.started.await.expect("the holding job runs");
        // One batch: the insert, then a job that keeps the batch from committing.
        let mut write = queued(insert(&db, 7)).await;
        let second = hold(&db).await;
        first.release.send(()).expect("release");
        second
            .started
            .await
            .expect("the second holding job runs, after the insert");
        first.done.await.expect("join").expect("commit");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut write)
                .await
                .is_err(),
            "the insert was reported before its commit"
        );
        assert!(
            stored(&db).is_empty(),
            "the insert is visible before its commit"
        );
        second.release.send(()).expect("release");
        second.done.await.expect("join").expect("commit");
        write.await.expect("join").expect("commit");
        assert_eq!(stored(&db), vec![7]);
    }

    /// The WAL header's checkpoint sequence: how many times the WAL was written over.
    fn wal_restarts(db: &Path) -> u32 {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let header = std::fs::read(wal).unwrap_or_default();
        header
            .get(12..16)
            .map_or(0, |n| u32::from_be_bytes(n.try_into().expect("4 bytes")))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_continuous_writes_the_wal_is_written_over_from_its_start() {
        const WRITES: i64 = 20_000;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.db");
        rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER PRIMARY KEY, b BLOB);",
                )
            })
            .expect("create");
        let writer = Arc::new(
            Writer::start_checkpointing_every(&path, Duration::from_millis(5)).expect("writer"),
        );
        let before = wal_restarts(&path);
        // Queued all at once, so that the writer never waits for a job: as under load, a
        // batch commits while the next one queues, and nothing else ever finds it idle.
        let writes: Vec<_> = (0..WRITES)
            .map(|v| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .run(Atomicity::OneStatement, move |conn| {
                            conn.execute_now(
                                "INSERT INTO t (v, b) VALUES ($1, zeroblob(200))",
                                &args![v],
                            )
                        })
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.expect("join").expect("every write commits");
        }
        let restarts = wal_restarts(&path) - before;
        assert!(
            restarts >= 3,
            "the WAL was written over {restarts} times in {WRITES} writes"
        );
        let stored: i64 = rusqlite::Connection::open(&path)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0)))
            .expect("count");
        assert_eq!(
            stored, WRITES,
            "every write is kept across the WAL's restarts"
        );
    }

    #[tokio::test]
    async fn stopping_runs_what_is_queued_and_refuses_what_comes_after() {
        let (db, _dir) = database().await;
        let db = std::sync::Arc::new(db);
        let held = hold(&db).await;
        held.started.await.expect("the holding job runs");
        let queued_write = queued(insert(&db, 1)).await;
        let stopping = queued({
            let db = db.clone();
            async move { db.close().await }
        })
        .await;
        held.release.send(()).expect("release");
        stopping.await.expect("join");
        queued_write
            .await
            .expect("join")
            .expect("queued before the stop");
        assert!(insert(&db, 2).await.is_err(), "a write after the stop");
        assert_eq!(stored(&db), vec![1]);
    }
}
