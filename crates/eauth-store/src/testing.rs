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

/// A database that lives as long as this value (for SQLite). PostgreSQL schemas are named
/// uniquely and left behind (a test cannot drop one when it ends: `Drop` cannot wait); the
/// first test database of each process drops those more than an hour old, so that the
/// database CI and developers share does not collect them run after run.
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
                STALE_SCHEMAS_DROPPED
                    .get_or_init(|| async {
                        // Test output, read by whoever runs the tests: no subscriber here.
                        #[allow(clippy::print_stderr)]
                        if let Err(error) = drop_stale_schemas(&base, "t").await {
                            eprintln!("cannot drop stale test schemas: {error}");
                        }
                    })
                    .await;
                Some(
                    Self::postgres_schema(&base, "t")
                        .await
                        .expect("create a test schema in EAUTH_TEST_DATABASE_URL"),
                )
            }
        }
    }

    /// A fresh schema `{prefix}_<unix seconds>_<uuid>` in the PostgreSQL database at `base`,
    /// for the benchmark as for tests; the URL it gives selects it through `search_path`.
    pub async fn postgres_schema(base: &str, prefix: &str) -> Result<Self, sqlx::Error> {
        let schema = format!("{prefix}_{}_{}", unix_now(), uuid::Uuid::new_v4().simple());
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

/// Whether this process has dropped the stale test schemas yet.
static STALE_SCHEMAS_DROPPED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// How old a test schema is when nobody can be using it any more.
const STALE_AFTER_SECS: u64 = 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn is_simple_uuid(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Drops the schemas `{prefix}_<unix seconds>_<uuid>` older than [`STALE_AFTER_SECS`], and
/// those named `{prefix}_<uuid>` by earlier versions, which carry no time.
async fn drop_stale_schemas(base: &str, prefix: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(base).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 || '\\_%'")
            .bind(prefix)
            .fetch_all(&mut admin)
            .await?;
    let cutoff = unix_now().saturating_sub(STALE_AFTER_SECS);
    for name in names {
        let rest = &name[prefix.len() + 1..];
        let stale = match rest.split_once('_') {
            Some((secs, uuid)) => {
                is_simple_uuid(uuid) && secs.parse::<u64>().is_ok_and(|created| created < cutoff)
            }
            None => is_simple_uuid(rest),
        };
        if stale {
            // The name was checked to be the prefix, digits, an underscore and hex digits.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut admin)
            .await?;
        }
    }
    Ok(())
}
