//! Sessions' busiest writes (see [`Store::batched`]): new sessions (`session-token`, every
//! sign-in of every portal) and the first opening of their pages.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{
    Dialect, Pool, Result, Revision, Session, SqlType,
    SqlType::{BigInt, Text},
    Store, StoreError,
    db::Value,
    execute_rows, fetch_rows, insert_rows, row_parameters, rows_source, update_rows,
};

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
        write_one!(self, conn => {
            let sql = text_per_dialect!(conn.dialect(), update_rows(
                conn.dialect(),
                "sessions",
                &[Text; 3],
                "signin_method = COALESCE(signin_method, v.column2),
                     source_ip = COALESCE(source_ip, v.column3)",
                "sessions.id = v.column1",
            ));
            let rows: Vec<Vec<Value<'_>>> = opens
                .iter()
                .map(|open| {
                    args![
                        open.id.to_string(),
                        open.signin_method.as_str(),
                        open.source_ip.as_str()
                    ]
                    .into()
                })
                .collect();
            execute_rows(conn, sql, &rows).await?;
            Ok(())
        })?;
        Ok(crate::batch::each_done(count))
    }

    /// Records a new pending session, in the same statement that checks the user is enrolled
    /// and not locked, so that a concurrent DISABLE cannot slip between check and insert, and
    /// that its application is still at `revision`, the copy the caller decided on (see
    /// [`Store::application_copy`]). `false` (nothing written) if the user has no usable
    /// enrollment; [`StoreError::ApplicationChanged`] (nothing written) if the application
    /// changed or is gone. Returns once the session is durable.
    pub async fn insert_session_if_enrolled(
        &self,
        session: &Session,
        revision: Revision,
    ) -> Result<bool> {
        self.batched(
            &self.batches.sessions,
            (session.clone(), revision),
            |store, sessions| async move {
                let (inserted, changed) = store.insert_sessions(&sessions).await?;
                Ok(sessions
                    .iter()
                    .map(|(s, _)| {
                        if inserted.contains(&s.id) {
                            Ok(true)
                        } else if changed.contains(&s.id) {
                            Err(StoreError::ApplicationChanged)
                        } else {
                            Ok(false)
                        }
                    })
                    .collect())
            },
        )
        .await
    }

    /// Inserts those of `sessions` whose users are enrolled and not locked and whose
    /// applications are at the revision given, in one write; returns the ids inserted, and the
    /// ids of those refused because their application changed.
    async fn insert_sessions(
        &self,
        sessions: &[(Session, Revision)],
    ) -> Result<(HashSet<Uuid>, HashSet<Uuid>)> {
        let rows: Vec<Vec<Value<'static>>> = sessions
            .iter()
            .map(|(s, revision)| {
                args![
                    s.id.to_string(),
                    s.client_id.to_string(),
                    s.email.as_str().to_owned(),
                    s.created_at,
                    s.expires_at,
                    revision.0
                ]
                .into()
            })
            .collect();
        let ids: Vec<Uuid> = sessions.iter().map(|(s, _)| s.id).collect();
        write_one!(self, conn => {
            let inserted = match conn.dialect() {
                Dialect::Postgres => {
                    let insert = text_per_dialect!(
                        conn.dialect(),
                        insert_sessions_sql(&rows_source(conn.dialect(), NEW_SESSION))
                    );
                    execute_rows(conn, insert, &rows).await?
                }
                // A row at a time, its check a query of its own: SQLite journals every page an
                // `INSERT ... SELECT` changes, in case the statement must be undone after some
                // of the rows it might insert, where an insert of one row by `VALUES` needs no
                // journal (10 % of a session-token's instructions).
                Dialect::Sqlite => {
                    let check = text_per_dialect!(
                        conn.dialect(),
                        row_parameters(&format!("SELECT 1 WHERE {NEW_SESSION_ALLOWED}"))
                    );
                    let insert = text_per_dialect!(
                        conn.dialect(),
                        insert_rows(conn.dialect(), NEW_SESSION_INTO, NEW_SESSION, NEW_SESSION_VALUES)
                    );
                    let mut inserted = 0;
                    for row in &rows {
                        if conn.fetch_optional::<(i64,)>(check, row).await?.is_some() {
                            inserted += conn.execute(insert, row).await?;
                        }
                    }
                    inserted
                }
            };
            if usize::try_from(inserted).is_ok_and(|inserted| inserted == ids.len()) {
                // Every user was enrolled, the usual case, told by the count alone.
                return Ok((ids.into_iter().collect(), HashSet::new()));
            }
            let new_sessions = rows_source(conn.dialect(), NEW_SESSION);
            let inserted = format!(
                "SELECT id FROM sessions WHERE id IN (SELECT v.column1 FROM {new_sessions})"
            );
            let inserted: Vec<(String,)> = fetch_rows(conn, &inserted, &rows).await?;
            // Revisions only move on: a revision refused by the insert is refused here too.
            let changed = format!(
                "SELECT v.column1 FROM {new_sessions} WHERE NOT EXISTS (SELECT 1 FROM applications a
                     WHERE a.client_id = v.column2 AND a.revision = v.column6)"
            );
            let changed: Vec<(String,)> = fetch_rows(conn, &changed, &rows).await?;
            Ok((ids_of(inserted)?, ids_of(changed)?))
        })
    }
}

/// The columns of a new session, as [`insert_sessions_sql`] gets them: id, client_id, email,
/// created_at, expires_at, and the revision of the application it was decided on.
const NEW_SESSION: &[SqlType] = &[Text, Text, Text, BigInt, BigInt, BigInt];

/// The insert of the new sessions in `new_sessions` (a [`rows_source`] of [`NEW_SESSION`]) whose
/// users are enrolled and not locked and whose applications are still at the revision named.
fn insert_sessions_sql(new_sessions: &str) -> String {
    format!(
        "INSERT INTO {NEW_SESSION_INTO} SELECT {NEW_SESSION_VALUES} FROM {new_sessions}
         WHERE {NEW_SESSION_ALLOWED}"
    )
}

/// Where a new session goes, and its values from a row of [`NEW_SESSION`].
const NEW_SESSION_INTO: &str = "sessions (id, client_id, email, status, created_at, expires_at)";
const NEW_SESSION_VALUES: &str = "v.column1, v.column2, v.column3, 'PENDING', v.column4, v.column5";

/// Whether a row of [`NEW_SESSION`] may be inserted: its user is enrolled and not locked, and
/// its application is at the revision named. The revision by a scalar subquery, not EXISTS,
/// which PostgreSQL's planner may turn into a join of the applications, then look for the
/// user among all the application's enrollments (seen before the tables were analysed: the
/// benchmark's session-token at 1 % of the baseline; see the test below).
const NEW_SESSION_ALLOWED: &str = "EXISTS (SELECT 1 FROM enrollments e
         WHERE e.client_id = v.column2 AND e.email = v.column3 AND e.locked_at IS NULL)
     AND (SELECT a.revision FROM applications a WHERE a.client_id = v.column2) = v.column6";

/// The session ids a query returned.
fn ids_of(rows: Vec<(String,)>) -> Result<HashSet<Uuid>> {
    rows.iter()
        .map(|(id,)| {
            Uuid::parse_str(id).map_err(|e| StoreError::Corrupt(format!("session id: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use eauth_core::{Algorithm, ApiKey, ClientId, Email, TotpParams};

    use super::{NEW_SESSION, insert_sessions_sql};
    use crate::{
        Application, Dialect, NewEnrollment, Pool, Store, rows_source,
        testing::{Backend, TestDatabase},
    };

    /// A new deployment's tables are not analysed yet: PostgreSQL's plan of the busiest write
    /// must still find each user by the whole key of `enrollments` (an application's id alone
    /// reads all of its users, a scan of the table reads everyone).
    #[tokio::test]
    async fn on_postgresql_a_new_session_finds_its_user_by_the_whole_key_unanalysed() {
        // Without EAUTH_TEST_DATABASE_URL there is no PostgreSQL to ask (CI sets it).
        let Some(db) = TestDatabase::create(Backend::Postgres).await else {
            return;
        };
        let store = Store::connect(db.url()).await.expect("store");
        let app = Application {
            client_id: ClientId::generate(),
            name: eauth_core::ApplicationName::parse("Portal").expect("name"),
            owner: None,
            ip_allow_list: eauth_core::IpAllowList::parse(["127.0.0.1"]).expect("ips"),
            redirect_uris: Vec::new(),
            callback_url: eauth_core::CallbackUrl::parse("https://portal.example.com/eauth")
                .expect("url"),
            api_key_hash: ApiKey::generate().hash(),
            sealed_callback_secret: vec![1],
            active: true,
            created_at: 1,
            revision: Default::default(),
        };
        store.insert_application(&app).await.expect("application");
        let params = TotpParams::new(Algorithm::Sha1, 6, 30).expect("params");
        let users: Vec<NewEnrollment> = (0..2_000)
            .map(|i| NewEnrollment {
                client_id: app.client_id,
                email: Email::parse(&format!("user{i}@example.com")).expect("email"),
                sealed_secret: vec![1],
                params,
            })
            .collect();
        store.upsert_enrollments(&users, 1).await.expect("users");

        let Pool::Postgres(pool, _) = &store.pool else {
            unreachable!("a PostgreSQL URL")
        };
        let mut conn = pool.acquire().await.expect("connection");
        let insert = insert_sessions_sql(&rows_source(Dialect::Postgres, NEW_SESSION));
        // The plan every execution gets once a connection has prepared the statement.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE new_sessions(json) AS {insert}"
        )))
        .execute(&mut *conn)
        .await
        .expect("prepare");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN EXECUTE new_sessions('[[\"id\", \"client\", \"user0@example.com\", 1, 2, 0]]')",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.lines().any(|line| line.contains("Index Cond")
                && line.contains("client_id =")
                && line.contains("email =")),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan on enrollments"), "{plan}");
        drop(conn);
        store.close().await;
    }
}
