//! New sessions, inserted many to one statement: `session-token` is the busiest write of the
//! service (every sign-in of every portal), and one multi-row `INSERT ... SELECT` costs about
//! what one single-row insert does. Sessions that arrive while the previous statement is being
//! written wait for the next one, so batches grow with the load and there is no timer.

use std::{collections::HashSet, sync::Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{Pool, Result, Session, Store, StoreError, placeholder_rows};

/// Rows per statement: 5 parameters each, far below both drivers' limits.
const SESSIONS_PER_STATEMENT: usize = 500;

/// A session waiting for its statement, and who waits for it.
type Waiting = (Session, oneshot::Sender<Result<bool>>);

/// The sessions waiting to be inserted, and whether a task is inserting.
#[derive(Default)]
pub(crate) struct NewSessions(Mutex<Queue>);

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    inserting: bool,
}

impl NewSessions {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Only pushes and swaps happen under the lock: nothing can panic there.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store {
    /// Records a new pending session, in the same statement that checks the user is enrolled
    /// and not locked, so that a concurrent DISABLE cannot slip between check and insert.
    /// `false` (nothing written) if the user has no usable enrollment. Concurrent calls share
    /// statements and commits (see the module's documentation); each returns once its session
    /// is durable.
    pub async fn insert_session_if_enrolled(&self, session: &Session) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queue = self.new_sessions.queue();
            queue.waiting.push((session.clone(), tx));
            !std::mem::replace(&mut queue.inserting, true)
        };
        if start {
            // On a task of its own: the caller's request may be cancelled, the others' not.
            let store = self.clone();
            tokio::spawn(async move { store.insert_waiting_sessions().await });
        }
        rx.await
            .map_err(|_| StoreError::Database("the session insert was abandoned".into()))?
    }

    /// Inserts what is waiting, then what arrived meanwhile, until nothing is left.
    async fn insert_waiting_sessions(&self) {
        loop {
            let batch = {
                let mut queue = self.new_sessions.queue();
                if queue.waiting.is_empty() {
                    queue.inserting = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let (sessions, waiters): (Vec<Session>, Vec<_>) = batch.into_iter().unzip();
            match self.insert_sessions(sessions.clone()).await {
                Ok(inserted) => {
                    for (session, waiter) in sessions.iter().zip(waiters) {
                        let _ = waiter.send(Ok(inserted.contains(&session.id)));
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    tracing::error!(error = %message, "cannot insert sessions");
                    for waiter in waiters {
                        let _ = waiter.send(Err(StoreError::Database(message.clone().into())));
                    }
                }
            }
        }
    }

    /// Inserts those of `sessions` whose users are enrolled and not locked, in one write;
    /// returns the ids inserted.
    async fn insert_sessions(&self, sessions: Vec<Session>) -> Result<HashSet<Uuid>> {
        let ids: Vec<String> = write_in!(self, conn => {
            let mut inserted = Vec::with_capacity(sessions.len());
            for chunk in sessions.chunks(SESSIONS_PER_STATEMENT) {
                // VALUES columns are column1..column5 in both SQLite and PostgreSQL.
                let sql = sqlx::AssertSqlSafe(format!(
                    "INSERT INTO sessions (id, client_id, email, status, created_at, expires_at)
                     SELECT v.column1, v.column2, v.column3, 'PENDING', v.column4, v.column5
                     FROM (VALUES {}) AS v
                     WHERE EXISTS (SELECT 1 FROM enrollments e
                         WHERE e.client_id = v.column2 AND e.email = v.column3 AND e.locked_at IS NULL)
                     RETURNING id",
                    placeholder_rows(chunk.len(), 5, |n| {
                        format!("(${}, ${}, ${}, ${}, ${})", n, n + 1, n + 2, n + 3, n + 4)
                    })
                ));
                // Not prepared for reuse: each batch size would be a statement of its own.
                let mut query = sqlx::query_scalar(sql).persistent(false);
                for session in chunk {
                    query = query
                        .bind(session.id.to_string())
                        .bind(session.client_id.to_string())
                        .bind(session.email.as_str().to_owned())
                        .bind(session.created_at)
                        .bind(session.expires_at);
                }
                let ids: Vec<String> = query.fetch_all(&mut *conn).await?;
                inserted.extend(ids);
            }
            Ok(inserted)
        })?;
        ids.iter()
            .map(|id| {
                Uuid::parse_str(id).map_err(|e| StoreError::Corrupt(format!("session id: {e}")))
            })
            .collect()
    }
}
