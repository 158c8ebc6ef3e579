//! Sessions' busiest writes, many to a statement (see [`crate::batch`]): new sessions
//! (`session-token`, every sign-in of every portal) and the first opening of their pages.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{Pool, Result, Session, Store, StoreError, numbered, value_rows};

/// Rows per statement: 5 parameters each, far below both drivers' limits.
const SESSIONS_PER_STATEMENT: usize = 500;

/// A sign-in page opened, as [`Store::record_page_open`] notes it.
pub(crate) struct PageOpen {
    id: Uuid,
    signin_method: String,
    source_ip: String,
}

impl Store {
    /// Notes how and from where the sign-in page was first opened; later openings change
    /// nothing.
    pub async fn record_page_open(
        &self,
        id: Uuid,
        signin_method: &str,
        source_ip: &str,
    ) -> Result<()> {
        let open = PageOpen {
            id,
            signin_method: signin_method.to_owned(),
            source_ip: source_ip.to_owned(),
        };
        self.batched(&self.batches.page_opens, open, Store::record_page_opens)
            .await
    }

    async fn record_page_opens(self, mut opens: Vec<PageOpen>) -> Result<Vec<Result<()>>> {
        let count = opens.len();
        // One row per session (a statement updates a row once): the first opening wins, as
        // it would one after the other.
        let mut seen = HashSet::new();
        opens.retain(|open| seen.insert(open.id));
        write_in!(self, conn => {
            for chunk in opens.chunks(SESSIONS_PER_STATEMENT) {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE sessions SET signin_method = COALESCE(signin_method, v.column2),
                         source_ip = COALESCE(source_ip, v.column3)
                     FROM (VALUES {}) AS v WHERE sessions.id = v.column1",
                    value_rows(chunk.len(), 3)
                ));
                let mut query = sqlx::query(sql).persistent(false);
                for open in chunk {
                    query = query
                        .bind(open.id.to_string())
                        .bind(open.signin_method.clone())
                        .bind(open.source_ip.clone());
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        })?;
        Ok(crate::batch::each_done(count))
    }

    /// Records a new pending session, in the same statement that checks the user is enrolled
    /// and not locked, so that a concurrent DISABLE cannot slip between check and insert.
    /// `false` (nothing written) if the user has no usable enrollment. Returns once the
    /// session is durable.
    pub async fn insert_session_if_enrolled(&self, session: &Session) -> Result<bool> {
        self.batched(
            &self.batches.sessions,
            session.clone(),
            |store, sessions| async move {
                let inserted = store.insert_sessions(&sessions).await?;
                Ok(sessions
                    .iter()
                    .map(|s| Ok(inserted.contains(&s.id)))
                    .collect())
            },
        )
        .await
    }

    /// Inserts those of `sessions` whose users are enrolled and not locked, in one write;
    /// returns the ids inserted.
    async fn insert_sessions(&self, sessions: &[Session]) -> Result<HashSet<Uuid>> {
        let sessions = sessions.to_vec();
        let ids: Vec<String> = write_in!(self, conn => {
            let mut inserted = Vec::with_capacity(sessions.len());
            for chunk in sessions.chunks(SESSIONS_PER_STATEMENT) {
                // VALUES columns are column1..column5 in both SQLite and PostgreSQL.
                let sql = sqlx::AssertSqlSafe(format!(
                    "INSERT INTO sessions (id, client_id, email, status, created_at, expires_at)
                     SELECT v.column1, v.column2, v.column3, 'PENDING', v.column4, v.column5
                     FROM (VALUES {}) AS v
                     WHERE EXISTS (SELECT 1 FROM enrollments e
                         WHERE e.client_id = v.column2 AND e.email = v.column3 AND e.locked_at IS NULL)",
                    value_rows(chunk.len(), 5)
                ));
                // Not prepared for reuse: each batch size would be a statement of its own.
                let mut query = sqlx::query(sql).persistent(false);
                for session in chunk {
                    query = query
                        .bind(session.id.to_string())
                        .bind(session.client_id.to_string())
                        .bind(session.email.as_str().to_owned())
                        .bind(session.created_at)
                        .bind(session.expires_at);
                }
                let count = query.execute(&mut *conn).await?.rows_affected();
                let ids = chunk.iter().map(|s| s.id.to_string());
                if usize::try_from(count).is_ok_and(|count| count == chunk.len()) {
                    // Every user was enrolled, the usual case, told by the count alone: rows
                    // returned come one message at a time from the driver's thread.
                    inserted.extend(ids);
                } else {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT id FROM sessions WHERE id IN ({})",
                        numbered(1, chunk.len())
                    ));
                    let mut query = sqlx::query_scalar(sql).persistent(false);
                    for id in ids {
                        query = query.bind(id);
                    }
                    let found: Vec<String> = query.fetch_all(&mut *conn).await?;
                    inserted.extend(found);
                }
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
