//! Group commit for SQLite: the store's writes made with `write_in!` run on one connection, in
//! transactions shared by the writes that arrive together, so that one fsync makes a whole
//! batch durable.
//!
//! A durable SQLite commit costs an fsync of the WAL (up to a few ms under load),
//! and SQLite admits one writer at a time: one commit per request caps the service at a few
//! hundred writes per second, and pool connections that compete for the write lock wait in
//! SQLite's sleeping busy handler. Here a single task owns the writing connection. It takes
//! every job that is waiting (up to [`MAX_BATCH`]), runs them one after the other inside one
//! `BEGIN IMMEDIATE ... COMMIT`, and only after the commit returns tells each job's caller its
//! result. Durability is unchanged (`synchronous = FULL`: nothing is acknowledged before its
//! commit is on disk); what is shared is the cost. Batches form by themselves: while one
//! commits, the next one's jobs queue up, so there is no timer and no added latency when the
//! service is idle.
//!
//! A job is atomic as if it had its own transaction, with one rule: it reports what it
//! expected to happen (a conflict, a row not found) as a value, and fails only on what should
//! never happen (I/O, corruption). A failure rolls back its batch: the jobs that ran before it
//! in that batch fail with it, the ones after it run in the next batch. Jobs run on the
//! writer's task, not the caller's, so a request cancelled by its client cannot leave half a
//! job in a transaction that others commit.
//!
//! PostgreSQL needs none of this: concurrent commits on its pool share WAL flushes already.

use std::{future::Future, pin::Pin};

use sqlx::{Connection, SqliteConnection, SqlitePool, sqlite::SqliteConnectOptions};
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Jobs per transaction at most: enough to absorb every request of a busy server in one
/// fsync, few enough that one batch does not hold the write lock for long.
pub(crate) const MAX_BATCH: usize = 256;

/// A future that borrows the writing connection.
pub(crate) type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Tells a job's caller its result once the batch is over, given why the batch did not
/// commit, if it did not.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// What a job leaves behind once it ran.
struct Ran {
    failed: bool,
    reply: Reply,
}

type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Ran> + Send>;

/// A write that was rolled back because its batch failed.
#[derive(Debug, thiserror::Error)]
#[error("the write was rolled back with its batch: {0}")]
struct BatchFailed(String);

/// The handle to the writing task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writing connection and starts its task, which ends when every handle is gone.
    /// `readers` is the pool that checkpoints the WAL (see [`CHECKPOINT_EVERY`]).
    pub(crate) async fn start(options: &SqliteConnectOptions, readers: SqlitePool) -> Result<Self> {
        // The writer never checkpoints itself: a checkpoint inside a commit copies the WAL into
        // the database and syncs it, holding every caller of that batch for tens of ms.
        let options = options.clone().pragma("wal_autocheckpoint", "0");
        let connection = SqliteConnection::connect_with(&options).await?;
        // Bounded, so that a stalled disk pushes back on callers instead of queueing forever;
        // requests are limited upstream, so this is rarely full.
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(connection, queue, readers));
        Ok(Self { jobs })
    }

    /// Runs `job` in the next batch; its result once the batch committed.
    pub(crate) async fn run<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = job(conn).await;
                Ran {
                    failed: result.is_err(),
                    reply: Box::new(move |batch_error| {
                        let _ = tx.send(match (result, batch_error) {
                            (Err(own), _) => Err(own),
                            (Ok(_), Some(error)) => Err(StoreError::Database(Box::new(
                                BatchFailed(error.to_owned()),
                            ))),
                            (Ok(value), None) => Ok(value),
                        });
                    }),
                }
            })
        });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        // The job was dropped unrun: its batch could not even begin (logged by the writer).
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the database writer is not running".into())
}

/// How often, at most, the WAL is checkpointed while there are writes: PASSIVE, beside the
/// writer (which goes on writing meanwhile), so the WAL stays a second's writes long.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies what the WAL holds into the database, without waiting for anyone; one at a time.
async fn checkpoint(readers: SqlitePool, running: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    if let Err(error) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&readers)
        .await
    {
        tracing::warn!(error = %error, "cannot checkpoint the WAL");
    }
    running.store(false, std::sync::atomic::Ordering::Release);
}

/// The writer's loop: a batch of whatever is waiting, then the next.
async fn run(
    mut connection: SqliteConnection,
    mut queue: mpsc::Receiver<Job>,
    readers: SqlitePool,
) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    let mut checkpointed = std::time::Instant::now();
    let checkpointing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    while queue.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let mut jobs = std::mem::take(&mut waiting).into_iter();
        // A failed job's batch is rolled back; the jobs that had not run yet go on.
        loop {
            let ran = commit_batch(&mut connection, &mut jobs).await;
            if ran == 0 || jobs.len() == 0 {
                break;
            }
        }
        waiting = Vec::with_capacity(MAX_BATCH);
        if checkpointed.elapsed() >= CHECKPOINT_EVERY
            && !checkpointing.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            checkpointed = std::time::Instant::now();
            tokio::spawn(checkpoint(readers.clone(), checkpointing.clone()));
        }
    }
    let _ = connection.close().await;
}

/// Runs jobs from `jobs` in one transaction until they are done or one fails, then commits
/// (or rolls back) and replies to every job that ran; returns how many ran.
async fn commit_batch(
    connection: &mut SqliteConnection,
    jobs: &mut impl Iterator<Item = Job>,
) -> usize {
    let started = std::time::Instant::now();
    if let Err(error) = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
    {
        // Without a transaction nothing can run: the callers get an error when their jobs
        // are dropped.
        tracing::error!(error = %error, "cannot begin a write transaction");
        jobs.for_each(drop);
        return 0;
    }
    let mut replies = Vec::new();
    let mut failed = false;
    for job in jobs.by_ref() {
        let ran = job(connection).await;
        replies.push(ran.reply);
        if ran.failed {
            failed = true;
            break;
        }
    }
    let ran = std::time::Instant::now();
    let outcome = if failed {
        Err("another write in its batch failed".to_owned())
    } else {
        sqlx::raw_sql("COMMIT")
            .execute(&mut *connection)
            .await
            .map(drop)
            .map_err(|error| {
                tracing::error!(error = %error, "cannot commit a write transaction");
                format!("commit failed: {error}")
            })
    };
    if outcome.is_err() {
        // After a failed COMMIT SQLite may have rolled back already; then this fails harmlessly.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *connection).await;
    }
    let count = replies.len();
    tracing::debug!(
        jobs = count,
        run_us = (ran - started).as_micros() as u64,
        commit_us = ran.elapsed().as_micros() as u64,
        "write batch"
    );
    let error = outcome.err();
    for reply in replies {
        reply(error.as_deref());
    }
    count
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn writer() -> (Writer, sqlx::SqlitePool, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        ))
        .expect("a SQLite URL")
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::SqlitePool::connect_with(options.clone())
            .await
            .expect("connect");
        sqlx::raw_sql("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .expect("create");
        (
            Writer::start(&options, pool.clone()).await.expect("writer"),
            pool,
            dir,
        )
    }

    fn insert(writer: &Writer, v: i64) -> impl Future<Output = Result<()>> + use<> {
        let writer = writer.clone();
        async move {
            writer
                .run(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (v) VALUES ($1)")
                            .bind(v)
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                })
                .await
        }
    }

    async fn stored(pool: &sqlx::SqlitePool) -> Vec<i64> {
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(pool)
            .await
            .expect("select")
    }

    /// A job that holds the writer from when it starts (`started`) until `release` is sent,
    /// so that the jobs queued meanwhile form one batch.
    struct Hold {
        release: oneshot::Sender<()>,
        started: oneshot::Receiver<()>,
        done: tokio::task::JoinHandle<Result<()>>,
    }

    async fn hold(writer: &Writer) -> Hold {
        let (release, released) = oneshot::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let writer = writer.clone();
        let done = queued(async move {
            writer
                .run(move |_| {
                    Box::pin(async move {
                        let _ = started.send(());
                        let _ = released.await;
                        Ok(())
                    })
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

    #[tokio::test]
    async fn writes_queued_together_all_commit_and_each_caller_gets_its_own_result() {
        let (writer, pool, _dir) = writer().await;
        let held = hold(&writer).await;
        held.started.await.expect("the holding job runs");
        let mut writes = Vec::new();
        for v in 1..=50 {
            writes.push(queued(insert(&writer, v)).await);
        }
        held.release.send(()).expect("release");
        held.done
            .await
            .expect("join")
            .expect("the holding job commits");
        for write in writes {
            write.await.expect("join").expect("each write commits");
        }
        assert_eq!(stored(&pool).await, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failed_job_rolls_back_the_jobs_before_it_in_its_batch_and_not_the_jobs_after_it() {
        let (writer, pool, _dir) = writer().await;
        let held = hold(&writer).await;
        held.started.await.expect("the holding job runs");
        let before = queued(insert(&writer, 1)).await;
        let failing = queued(insert(&writer, 1)).await;
        let after = queued(insert(&writer, 2)).await;
        held.release.send(()).expect("release");
        held.done
            .await
            .expect("join")
            .expect("the holding job commits");
        let (before, failing, after) = (
            before.await.expect("join"),
            failing.await.expect("join"),
            after.await.expect("join"),
        );
        // The second insert of 1 violates the primary key: it fails with its own error, and
        // the first insert, which ran before it in the same transaction, is rolled back...
        assert!(matches!(failing, Err(StoreError::Conflict)), "{failing:?}");
        assert!(matches!(before, Err(StoreError::Database(_))), "{before:?}");
        // ... while the job after it runs in the next batch.
        after.expect("the job after the failure commits");
        assert_eq!(stored(&pool).await, vec![2]);
    }

    #[tokio::test]
    async fn a_write_is_neither_reported_nor_visible_before_its_batch_commits() {
        let (writer, pool, _dir) = writer().await;
        let first = hold(&writer).await;
        first.started.await.expect("the holding job runs");
        // One batch: the insert, then a job that keeps the batch from committing.
        let mut write = queued(insert(&writer, 7)).await;
        let second = hold(&writer).await;
        first.release.send(()).expect("release");
        first.done.await.expect("join").expect("commit");
        second
            .started
            .await
            .expect("the second holding job runs, after the insert");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut write)
                .await
                .is_err(),
            "the insert was reported before its commit"
        );
        assert!(
            stored(&pool).await.is_empty(),
            "the insert is visible before its commit"
        );
        second.release.send(()).expect("release");
        second.done.await.expect("join").expect("commit");
        write.await.expect("join").expect("commit");
        assert_eq!(stored(&pool).await, vec![7]);
    }
}
