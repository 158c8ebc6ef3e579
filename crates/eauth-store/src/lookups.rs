//! The busiest reads, by key, many to a statement (see [`crate::batch`]): applications (every
//! API call and sign-in page), sessions, enrollments and devices (every sign-in page). A
//! batch's distinct keys go to one prepared statement as one JSON parameter (see
//! [`json_rows`]), where a statement per call cost a round trip to a reader's driver thread
//! each.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

use eauth_core::{ClientId, Email};
use uuid::Uuid;

use crate::{
    Application, Device, Enrollment, Pool, Result, Session, SqlType, Store, StoreError,
    devices::DeviceRow,
    json_array, json_rows,
    records::{ApplicationRow, EnrollmentRow, SessionRow},
};

/// A user, as the reads by user are keyed.
type UserKey = (String, String);

fn user_key(client_id: ClientId, email: &Email) -> UserKey {
    (client_id.to_string(), email.as_str().to_owned())
}

impl Store {
    /// The application with this id.
    pub async fn application(&self, client_id: ClientId) -> Result<Option<Application>> {
        self.batched(
            &self.batches.applications,
            client_id,
            |store, ids| async move {
                let select = format!(
                    concat!(
                        "SELECT ",
                        application_columns!(),
                        " FROM applications WHERE client_id IN (SELECT v.column1 FROM {})"
                    ),
                    json_rows(store.dialect(), 1, &[SqlType::Text])
                );
                let keys = ids.iter().map(ToString::to_string).collect();
                let found = store
                    .rows_by_key(
                        keys,
                        select,
                        |id| serde_json::json!([id]),
                        |row: ApplicationRow| (row.client_id.clone(), Application::try_from(row)),
                    )
                    .await?;
                Ok(first_of_each(found))
            },
        )
        .await
    }

    /// The session with this id.
    pub async fn session(&self, id: Uuid) -> Result<Option<Session>> {
        self.batched(&self.batches.sessions_by_id, id, |store, ids| async move {
            let select = format!(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id IN (SELECT v.column1 FROM {})"
                ),
                json_rows(store.dialect(), 1, &[SqlType::Text])
            );
            let keys = ids.iter().map(ToString::to_string).collect();
            let found = store
                .rows_by_key(
                    keys,
                    select,
                    |id| serde_json::json!([id]),
                    |row: SessionRow| (row.id.clone(), Session::try_from(row)),
                )
                .await?;
            Ok(first_of_each(found))
        })
        .await
    }

    /// A user's enrollment.
    pub async fn enrollment(
        &self,
        client_id: ClientId,
        email: &Email,
    ) -> Result<Option<Enrollment>> {
        let user = (client_id, email.clone());
        self.batched(&self.batches.enrollments_by_user, user, |store, users| async move {
            // A join, not `(client_id, email) IN (...)`, which SQLite answers by scanning the
            // whole table.
            let select = format!(
                concat!("SELECT ", enrollment_columns!(), " FROM {} JOIN enrollments e ON e.client_id = v.column1 AND e.email = v.column2"),
                json_rows(store.dialect(), 1, &[SqlType::Text, SqlType::Text])
            );
            let keys = users.iter().map(|(c, e)| user_key(*c, e)).collect();
            let found = store
                .rows_by_key(keys, select, user_json, |row: EnrollmentRow| {
                    ((row.client_id.clone(), row.email.clone()), Enrollment::try_from(row))
                })
                .await?;
            Ok(first_of_each(found))
        })
        .await
    }

    /// A user's devices, oldest first (for the console, and to know whether to offer push).
    pub async fn devices_of(&self, client_id: ClientId, email: &Email) -> Result<Vec<Device>> {
        let user = (client_id, email.clone());
        self.batched(&self.batches.devices_by_user, user, |store, users| async move {
            let select = format!(
                concat!("SELECT ", device_columns!(), " FROM {} JOIN devices d ON d.client_id = v.column1 AND d.email = v.column2 ORDER BY d.created_at, d.id"),
                json_rows(store.dialect(), 1, &[SqlType::Text, SqlType::Text])
            );
            let keys = users.iter().map(|(c, e)| user_key(*c, e)).collect();
            store
                .rows_by_key(keys, select, user_json, |row: DeviceRow| {
                    ((row.client_id.clone(), row.email.clone()), Device::try_from(row))
                })
                .await
        })
        .await
    }

    /// Serves a batch of reads by key with one statement: `select` reads the rows of the
    /// distinct keys, which it gets as `$1` (see [`json_rows`]; `to_json` writes a key's
    /// columns), and `read` tells each row's key and what it holds. Every call gets the rows of
    /// its key, in the order `select` gave them; a row that cannot be read fails the calls of
    /// its key and no others.
    async fn rows_by_key<K, R, T>(
        &self,
        keys: Vec<K>,
        select: String,
        to_json: impl Fn(&K) -> serde_json::Value,
        read: impl Fn(R) -> (K, Result<T>),
    ) -> Result<Vec<Result<Vec<T>>>>
    where
        K: Eq + Hash,
        T: Clone,
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let mut distinct = HashSet::new();
        let wanted = json_array(keys.iter().filter(|k| distinct.insert(*k)).map(to_json));
        let sql = sqlx::AssertSqlSafe(select);
        let rows: Vec<R> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(wanted).fetch_all(pool).await?);
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

fn user_json((client_id, email): &UserKey) -> serde_json::Value {
    serde_json::json!([client_id, email])
}

/// Each call's row, of reads that find one at most.
fn first_of_each<T>(found: Vec<Result<Vec<T>>>) -> Vec<Result<Option<T>>> {
    found
        .into_iter()
        .map(|rows| rows.map(|rows| rows.into_iter().next()))
        .collect()
}
