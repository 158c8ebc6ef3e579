//! The busiest reads, by key (see [`Store::batched`]): applications (every API call and
//! sign-in page), sessions, enrollments and devices (every sign-in page). On PostgreSQL a
//! batch's distinct keys go to one prepared statement (see [`rows_source`]), where a statement
//! per call cost a round trip each.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

use eauth_core::{ClientId, Email};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::{
    Application, Device, Dialect, Enrollment, Pool, Result, Revision, Session, SqlType, Store,
    StoreError,
    db::{FromSqliteRow, Row, Value},
    devices::DeviceRow,
    fetch_rows,
    records::{ApplicationRow, EnrollmentRow, SessionRow},
    rows_source,
};

/// What a batch of reads is keyed by, as its statement gets the keys: columns of
/// [`rows_source`].
trait Key: Eq + Hash + Send + Sync + 'static {
    const COLUMNS: &'static [SqlType];

    fn values(&self) -> Vec<Value<'_>>;
}

/// An id.
impl Key for String {
    const COLUMNS: &'static [SqlType] = &[SqlType::Text];

    fn values(&self) -> Vec<Value<'_>> {
        args![self].into()
    }
}

/// A user: client_id and email.
impl Key for (String, String) {
    const COLUMNS: &'static [SqlType] = &[SqlType::Text, SqlType::Text];

    fn values(&self) -> Vec<Value<'_>> {
        args![&self.0, &self.1].into()
    }
}

fn user_key(client_id: ClientId, email: &Email) -> (String, String) {
    (client_id.to_string(), email.as_str().to_owned())
}

/// The statement of a read by an id column, for [`Store::rows_by_key`]: a join, not
/// `id IN (SELECT ...)`, for which SQLite builds a temporary index on every call.
fn by_id(columns: &str, table: &str, id: &str, dialect: Dialect) -> String {
    format!(
        "SELECT {columns} FROM {} JOIN {table} t ON t.{id} = v.column1",
        rows_source(dialect, <String as Key>::COLUMNS)
    )
}

/// The statement of a read by user (client_id and email), for [`Store::rows_by_key`]: a join,
/// not `(client_id, email) IN (...)`, which SQLite answers by scanning the whole table.
fn by_user(columns: &str, table: &str, then: &str, dialect: Dialect) -> String {
    format!(
        "SELECT {columns} FROM {} JOIN {table} t \
         ON t.client_id = v.column1 AND t.email = v.column2{then}",
        rows_source(dialect, <(String, String) as Key>::COLUMNS)
    )
}

/// The batched reads of [`Store::session_of`]: each session found, with the revision of its
/// application.
pub(crate) type SessionsOf =
    crate::batch::Batcher<(Uuid, ClientId), Option<(Session, Option<i64>)>>;

/// A row and the revision of the application it belongs to (`application_revision`, `NULL`
/// if there is none).
struct WithRevision<R> {
    row: R,
    revision: Option<i64>,
}

impl<R: FromSqliteRow> FromSqliteRow for WithRevision<R> {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            row: R::from_sqlite(row)?,
            revision: row.get("application_revision")?,
        })
    }
}

impl<'r, R: sqlx::FromRow<'r, PgRow>> sqlx::FromRow<'r, PgRow> for WithRevision<R> {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        use sqlx::Row as _;
        Ok(Self {
            row: R::from_row(row)?,
            revision: row.try_get("application_revision")?,
        })
    }
}

/// PostgreSQL's copies of the applications this process read, by id (see
/// [`Store::application_copy`]).
pub(crate) type Copies = std::sync::Mutex<HashMap<ClientId, Application>>;

impl Store {
    /// This process's copy of the application with this id, if it keeps one: on PostgreSQL
    /// the last one [`Store::application`] read, which may be older than the database. Only
    /// for calls whose writes name its [`Revision`](crate::Revision), so that a copy overtaken
    /// by a change writes nothing; and its checks that fail must be made again on what
    /// [`Store::application`] reads (the application may have been activated, or its key
    /// rotated to the one presented, since). On PostgreSQL a read costs a statement, as much
    /// as the API's calls' own; SQLite keeps no copies here, its reads are cheap already (see
    /// `sqlite::applications`).
    pub fn application_copy(&self, client_id: ClientId) -> Option<Application> {
        match &self.pool {
            Pool::Sqlite(..) => None,
            Pool::Postgres(_, copies) => copies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&client_id)
                .cloned(),
        }
    }

    /// The application with this id, as the database holds it.
    pub async fn application(&self, client_id: ClientId) -> Result<Option<Application>> {
        if let Pool::Sqlite(_, sqlite) = &self.pool {
            return sqlite.applications().get(client_id, || {
                let row: Option<ApplicationRow> = sqlite.read(|conn| {
                    conn.fetch_optional_now(
                        concat!(
                            "SELECT ",
                            application_columns!(),
                            " FROM applications WHERE client_id = $1"
                        ),
                        &args![client_id.to_string()],
                    )
                })?;
                row.map(Application::try_from).transpose()
            });
        }
        let application = self
            .batched(
                &self.batches.applications,
                client_id,
                |store, ids| async move {
                    let select = |dialect| {
                        text_per_dialect!(
                            dialect,
                            by_id(application_columns!(), "applications", "client_id", dialect)
                        )
                    };
                    let ids = ids.iter().map(ToString::to_string).collect();
                    store
                        .row_by_key(ids, select, |row: ApplicationRow| {
                            (row.client_id.clone(), Application::try_from(row))
                        })
                        .await
                },
            )
            .await?;
        if let Pool::Postgres(_, copies) = &self.pool {
            let mut copies = copies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &application {
                // Two reads in flight may end in either order: the later revision stays.
                Some(application) => {
                    let copy = copies
                        .entry(client_id)
                        .or_insert_with(|| application.clone());
                    if copy.revision < application.revision {
                        *copy = application.clone();
                    }
                }
                None => drop(copies.remove(&client_id)),
            }
        }
        Ok(application)
    }

    /// The session with this id.
    pub async fn session(&self, id: Uuid) -> Result<Option<Session>> {
        self.batched(&self.batches.sessions_by_id, id, |store, ids| async move {
            let select = |dialect| {
                text_per_dialect!(
                    dialect,
                    by_id(session_columns!(), "sessions", "id", dialect)
                )
            };
            let ids = ids.iter().map(ToString::to_string).collect();
            store
                .row_by_key(ids, select, |row: SessionRow| {
                    (row.id.clone(), Session::try_from(row))
                })
                .await
        })
        .await
    }

    /// The session with this id if it is `application`'s, read in one statement with the
    /// application's current revision: [`StoreError::ApplicationChanged`] if that is no longer
    /// `application`'s, which may be a copy (see [`Store::application_copy`]).
    pub async fn session_of(&self, id: Uuid, application: &Application) -> Result<Option<Session>> {
        let key = (id, application.client_id);
        let found = self
            .batched(&self.batches.sessions_of, key, |store, keys| async move {
                let select = |dialect| {
                    text_per_dialect!(dialect, format!(
                        concat!(
                            "SELECT ",
                            session_columns!(),
                            ", (SELECT a.revision FROM applications a WHERE a.client_id = v.column2)",
                            " AS application_revision",
                            " FROM {} JOIN sessions t ON t.id = v.column1 AND t.client_id = v.column2"
                        ),
                        rows_source(dialect, <(String, String) as Key>::COLUMNS)
                    ))
                };
                let keys = keys
                    .iter()
                    .map(|(id, client_id)| (id.to_string(), client_id.to_string()))
                    .collect();
                store
                    .row_by_key(keys, select, |row: WithRevision<SessionRow>| {
                        let key = (row.row.id.clone(), row.row.client_id.clone());
                        let revision = row.revision;
                        (key, Session::try_from(row.row).map(|s| (s, revision)))
                    })
                    .await
            })
            .await?;
        let current = match &found {
            Some((_, revision)) => revision.map(Revision),
            // Only here does the application need a statement of its own.
            None => self
                .application(application.client_id)
                .await?
                .map(|a| a.revision),
        };
        if current != Some(application.revision) {
            return Err(StoreError::ApplicationChanged);
        }
        Ok(found.map(|(session, _)| session))
    }

    /// A user's enrollment.
    pub async fn enrollment(
        &self,
        client_id: ClientId,
        email: &Email,
    ) -> Result<Option<Enrollment>> {
        let user = (client_id, email.clone());
        self.batched(
            &self.batches.enrollments_by_user,
            user,
            |store, users| async move {
                let select = |dialect| {
                    text_per_dialect!(
                        dialect,
                        by_user(enrollment_columns!(), "enrollments", "", dialect)
                    )
                };
                let users = users.iter().map(|(c, e)| user_key(*c, e)).collect();
                store
                    .row_by_key(users, select, |row: EnrollmentRow| {
                        let key = (row.client_id.clone(), row.email.clone());
                        (key, Enrollment::try_from(row))
                    })
                    .await
            },
        )
        .await
    }

    /// A user's devices, oldest first (for the console, and to know whether to offer push).
    pub async fn devices_of(&self, client_id: ClientId, email: &Email) -> Result<Vec<Device>> {
        let user = (client_id, email.clone());
        self.batched(
            &self.batches.devices_by_user,
            user,
            |store, users| async move {
                let select = |dialect| {
                    text_per_dialect!(
                        dialect,
                        by_user(
                            device_columns!(),
                            "devices",
                            " ORDER BY t.created_at, t.id",
                            dialect
                        )
                    )
                };
                let users = users.iter().map(|(c, e)| user_key(*c, e)).collect();
                store
                    .rows_by_key(users, select, |row: DeviceRow| {
                        let key = (row.client_id.clone(), row.email.clone());
                        (key, Device::try_from(row))
                    })
                    .await
            },
        )
        .await
    }

    /// [`Store::rows_by_key`] for reads that find one row at most.
    async fn row_by_key<K: Key, R: Row, T: Clone>(
        &self,
        keys: Vec<K>,
        select: impl FnOnce(Dialect) -> &'static str,
        read: impl Fn(R) -> (K, Result<T>),
    ) -> Result<Vec<Result<Option<T>>>> {
        let found = self.rows_by_key(keys, select, read).await?;
        Ok(found
            .into_iter()
            .map(|rows| rows.map(|rows| rows.into_iter().next()))
            .collect())
    }

    /// Serves a batch of reads by key with one statement: `select` gives its text in the
    /// connection's dialect, over the [`rows_source`] of the distinct keys, and `read` tells each
    /// row's key and what it holds. Every call gets the rows of its key, in the order the
    /// statement gave them; a row that cannot be read fails the calls of its key and no others.
    async fn rows_by_key<K: Key, R: Row, T: Clone>(
        &self,
        keys: Vec<K>,
        select: impl FnOnce(Dialect) -> &'static str,
        read: impl Fn(R) -> (K, Result<T>),
    ) -> Result<Vec<Result<Vec<T>>>> {
        let mut distinct = HashSet::new();
        let wanted: Vec<Vec<Value<'_>>> = keys
            .iter()
            .filter(|k| distinct.insert(*k))
            .map(Key::values)
            .collect();
        let rows: Vec<R> = read_in!(self, conn => {
            fetch_rows(conn, select(conn.dialect()), &wanted).await
        })?;
        let mut found: HashMap<K, Result<Vec<T>>> = HashMap::new();
        for row in rows {
            let (key, value) = read(row);
            let rows_of_key = found.entry(key).or_insert_with(|| Ok(Vec::new()));
            match (rows_of_key.as_mut(), value) {
                (Ok(values), Ok(value)) => values.push(value),
                (_, Err(error)) => *rows_of_key = Err(error),
                (Err(_), Ok(_)) => {}
            }
        }
        Ok(keys
            .iter()
            .map(|key| match found.get(key) {
                None => Ok(Vec::new()),
                Some(Ok(values)) => Ok(values.clone()),
                Some(Err(error)) => Err(StoreError::Corrupt(error.to_string())),
            })
            .collect())
    }
}
