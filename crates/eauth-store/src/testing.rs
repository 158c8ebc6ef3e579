//! Databases for tests: a fresh SQLite file, or a fresh schema in the PostgreSQL server named
//! by `EAUTH_TEST_DATABASE_URL`, so that every test has a database of its own and tests run
//! in parallel.

use std::path::PathBuf;

use sqlx::{Connection, PgConnection};

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A schema of its own in `EAUTH_TEST_DATABASE_URL`.
    Postgres,
}

/// A database that lives as long as this value (for SQLite; PostgreSQL schemas are named
/// uniquely and left behind, cheap to drop in bulk: `DROP SCHEMA t_... CASCADE`).
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// The server's URL and the schema, for PostgreSQL.
    schema: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh database, or `None` for PostgreSQL when `EAUTH_TEST_DATABASE_URL` is unset.
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path: PathBuf = dir.path().join("eauth.db");
                Some(Self {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Backend::Postgres => {
                let base = std::env::var("EAUTH_TEST_DATABASE_URL").ok()?;
                Some(
                    Self::postgres_schema(&base, "t")
                        .await
                        .expect("create a test schema in EAUTH_TEST_DATABASE_URL"),
                )
            }
        }
    }

    /// A fresh schema `{prefix}_<uuid>` in the PostgreSQL database at `base`, for the
    /// benchmark as for tests; the URL it gives selects it through `search_path`.
    pub async fn postgres_schema(base: &str, prefix: &str) -> Result<Self, sqlx::Error> {
        let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(base).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Ok(Self {
            url,
            _dir: None,
            schema: Some((base.to_owned(), schema)),
        })
    }

    /// Drops a PostgreSQL schema with everything in it (a SQLite file goes with the value).
    pub async fn drop_schema(self) -> Result<(), sqlx::Error> {
        if let Some((base, schema)) = &self.schema {
            let mut admin = PgConnection::connect(base).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await?;
        }
        Ok(())
    }

    /// The URL to give the store or the server.
    pub fn url(&self) -> &str {
        &self.url
    }
}
