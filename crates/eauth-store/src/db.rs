//! Statements written once for both backends: SQL text with `$1`, `$2`, ... placeholders (both
//! databases read them), arguments as [`Value`]s, and rows read into types that both drivers
//! fill ([`Row`]). A body written against [`Conn`] compiles for either connection: on SQLite it
//! runs synchronously on rusqlite (see [`crate::sqlite`]), on PostgreSQL on a sqlx connection.
//!
//! Statement texts are constants, or built from constants: values only ever travel as
//! arguments.

use std::borrow::Cow;

use sqlx::{Postgres, postgres::PgRow};

use crate::{Dialect, Result, SpeaksDialect};

/// An argument of a statement. Nulls carry their type, which PostgreSQL must know.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    BigInt(Option<i64>),
    Int(Option<i32>),
    Bool(Option<bool>),
    Text(Option<Cow<'a, str>>),
    Blob(Option<Cow<'a, [u8]>>),
}

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Self::BigInt(Some(value))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(value: Option<i64>) -> Self {
        Self::BigInt(value)
    }
}

/// Saturating: the store's unsigned numbers (time steps, counts) are far from `i64::MAX`.
impl From<Option<u64>> for Value<'_> {
    fn from(value: Option<u64>) -> Self {
        Self::BigInt(value.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    }
}

impl From<u32> for Value<'_> {
    fn from(value: u32) -> Self {
        Self::BigInt(Some(i64::from(value)))
    }
}

impl From<i32> for Value<'_> {
    fn from(value: i32) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i32>> for Value<'_> {
    fn from(value: Option<i32>) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for Value<'_> {
    fn from(value: bool) -> Self {
        Self::Bool(Some(value))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(value: &'a str) -> Self {
        Self::Text(Some(Cow::Borrowed(value)))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(value: &'a String) -> Self {
        Self::Text(Some(Cow::Borrowed(value)))
    }
}

impl From<String> for Value<'_> {
    fn from(value: String) -> Self {
        Self::Text(Some(Cow::Owned(value)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Self::Text(value.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Value<'_> {
    fn from(value: Option<String>) -> Self {
        Self::Text(value.map(Cow::Owned))
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(value: &'a [u8]) -> Self {
        Self::Blob(Some(Cow::Borrowed(value)))
    }
}

impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(value: &'a Vec<u8>) -> Self {
        Self::Blob(Some(Cow::Borrowed(value)))
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(value: Vec<u8>) -> Self {
        Self::Blob(Some(Cow::Owned(value)))
    }
}

/// The arguments of a statement, `$1` first: `args![a, b]` is `[Value::from(a), Value::from(b)]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        [$($crate::db::Value::from($value)),*]
    };
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Self::BigInt(Some(n)) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Self::Int(Some(n)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*n))),
            Self::Bool(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Self::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Self::Blob(Some(bytes)) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Self::BigInt(None)
            | Self::Int(None)
            | Self::Bool(None)
            | Self::Text(None)
            | Self::Blob(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

impl Value<'_> {
    /// The value in a JSON array of rows (see `rows_source`): bytes as lowercase hex.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Self::BigInt(n) => n.map_or(Json::Null, Json::from),
            Self::Int(n) => n.map_or(Json::Null, Json::from),
            Self::Bool(b) => b.map_or(Json::Null, Json::from),
            Self::Text(text) => text.as_deref().map_or(Json::Null, Json::from),
            Self::Blob(bytes) => bytes.as_deref().map_or(Json::Null, |bytes| {
                Json::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
            }),
        }
    }

    fn bind_to<'q>(
        &self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        match self {
            Self::BigInt(n) => query.bind(*n),
            Self::Int(n) => query.bind(*n),
            Self::Bool(b) => query.bind(*b),
            Self::Text(text) => query.bind(text.as_deref()),
            Self::Blob(bytes) => query.bind(bytes.as_deref()),
        }
    }
}

/// A row read from SQLite by column name.
pub(crate) trait FromSqliteRow: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A row both backends can read.
pub(crate) trait Row:
    FromSqliteRow + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

impl<R> Row for R where R: FromSqliteRow + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}

impl<A: rusqlite::types::FromSql> FromSqliteRow for (A,) {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

impl<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql> FromSqliteRow for (A, B) {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

/// A struct of columns, read by name by either driver: `sqlx::FromRow` and [`FromSqliteRow`]
/// from one field list.
macro_rules! row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        impl $crate::db::FromSqliteRow for $name {
            // Each column's name read once: rusqlite's `get` by name compares the name with
            // every column's in turn, for each field.
            fn from_sqlite(sqlite_row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                $(let mut $field = None;)*
                let statement = sqlite_row.as_ref();
                for column in 0..statement.column_count() {
                    match statement.column_name(column)? {
                        $(stringify!($field) => $field = Some(sqlite_row.get(column)?),)*
                        _ => {}
                    }
                }
                Ok(Self {
                    $($field: $field.ok_or_else(|| {
                        rusqlite::Error::InvalidColumnName(stringify!($field).to_owned())
                    })?,)*
                })
            }
        }
    };
}

/// A connection, inside a transaction or not, that runs statements written for both
/// backends. Bodies written against it are compiled once per backend (see `write_in!`).
pub(crate) trait Conn: SpeaksDialect {
    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64>;

    /// Every row a statement gives.
    async fn fetch_all<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<R>>;

    /// The first row a statement gives, if any.
    async fn fetch_optional<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Option<R>>;

    /// The SQL this connection speaks.
    fn dialect(&self) -> Dialect {
        Self::DIALECT
    }
}

/// A PostgreSQL connection, through sqlx.
pub(crate) struct Pg<'c>(pub(crate) &'c mut sqlx::PgConnection);

impl SpeaksDialect for Pg<'_> {
    const DIALECT: Dialect = Dialect::Postgres;
}

fn pg_query<'q>(
    sql: &str,
    args: &[Value<'_>],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    args.iter().fold(
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())),
        |query, arg| arg.bind_to(query),
    )
}

impl Conn for Pg<'_> {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        Ok(pg_query(sql, args)
            .execute(&mut *self.0)
            .await?
            .rows_affected())
    }

    async fn fetch_all<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<R>> {
        let rows = pg_query(sql, args).fetch_all(&mut *self.0).await?;
        Ok(rows
            .iter()
            .map(|row| R::from_row(row))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn fetch_optional<R: Row>(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Option<R>> {
        let row = pg_query(sql, args).fetch_optional(&mut *self.0).await?;
        Ok(row.as_ref().map(R::from_row).transpose()?)
    }
}
