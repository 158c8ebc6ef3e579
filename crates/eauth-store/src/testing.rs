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
                })
            }
            Backend::Postgres => {
                let base = std::env::var("EAUTH_TEST_DATABASE_URL").ok()?;
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&base)
                    .await
                    .expect("connect to EAUTH_TEST_DATABASE_URL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
                Some(Self { url, _dir: None })
            }
        }
    }

    /// The URL to give the store or the server.
    pub fn url(&self) -> &str {
        &self.url
    }
}
