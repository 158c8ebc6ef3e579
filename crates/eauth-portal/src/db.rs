//! The portal's own data, in its own SQLite file: its users, their browser sessions, and the
//! sign-ins waiting for eAuthenticator's verdict.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

/// Creates the tables on first use. The portal is an example: one file of schema is enough.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- The TOTP secret, sealed with the portal's key: the enabled one, and one being set up.
    sealed_secret BLOB,
    sealed_pending_secret BLOB,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
-- A password accepted, the second factor not yet: bound to the browser that started it.
CREATE TABLE IF NOT EXISTS pending_signins (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser TEXT NOT NULL,
    -- Set only by a callback whose signature verified: 1 approved, 0 refused.
    approved INTEGER,
    expires_at INTEGER NOT NULL
);
";

/// A user of the portal.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Lower-case email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The enabled TOTP secret, sealed; `None` without 2FA.
    pub sealed_secret: Option<Vec<u8>>,
    /// A secret shown as a QR code but not confirmed yet.
    pub sealed_pending_secret: Option<Vec<u8>>,
}

/// The portal's database.
#[derive(Clone, Debug)]
pub struct Db(SqlitePool);

impl Db {
    /// Opens (creating) `portal.db` in `dir`.
    pub async fn open(dir: &Path) -> anyhow::Result<Self> {
        let url = format!("sqlite://{}", dir.join("portal.db").display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self(pool))
    }

    /// Adds a user; `false` if the email is taken.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
        )
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(&self.0)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The user with this email.
    pub async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash, sealed_secret, sealed_pending_secret FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.0)
        .await?)
    }

    /// The user with this id.
    pub async fn user(&self, id: i64) -> anyhow::Result<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash, sealed_secret, sealed_pending_secret FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.0)
        .await?)
    }

    /// Keeps a secret being set up.
    pub async fn set_pending_secret(&self, user: i64, sealed: Option<&[u8]>) -> anyhow::Result<()> {
        sqlx::query("UPDATE users SET sealed_pending_secret = $2 WHERE id = $1")
            .bind(user)
            .bind(sealed)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    /// Makes the pending secret the enabled one (or, with `None`, turns 2FA off).
    pub async fn set_secret(&self, user: i64, sealed: Option<&[u8]>) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE users SET sealed_secret = $2, sealed_pending_secret = NULL WHERE id = $1",
        )
        .bind(user)
        .bind(sealed)
        .execute(&self.0)
        .await?;
        Ok(())
    }

    /// Records a browser session.
    pub async fn create_web_session(
        &self,
        token_hash: &[u8],
        user: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(expires_at)
        .execute(&self.0)
        .await?;
        Ok(())
    }

    /// The user of a live browser session.
    pub async fn web_session_user(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> anyhow::Result<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT u.id, u.email, u.password_hash, u.sealed_secret, u.sealed_pending_secret
             FROM web_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.0)
        .await?)
    }

    /// Ends a browser session.
    pub async fn delete_web_session(&self, token_hash: &[u8]) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    /// Remembers a sign-in waiting for the second factor.
    pub async fn create_pending(
        &self,
        token_hash: &[u8],
        user: i64,
        browser: &str,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO pending_signins (token_hash, user_id, browser, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user)
            .bind(browser)
            .bind(expires_at)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    /// Records a verified callback's verdict; `false` if no such sign-in is waiting.
    pub async fn record_verdict(&self, token_hash: &[u8], approved: bool) -> anyhow::Result<bool> {
        let updated = sqlx::query("UPDATE pending_signins SET approved = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(approved)
            .execute(&self.0)
            .await?
            .rows_affected();
        Ok(updated == 1)
    }

    /// Takes a waiting sign-in of this browser, once: the row is gone afterwards, so a token
    /// can finish at most one sign-in. Returns the user and the recorded verdict.
    pub async fn take_pending(
        &self,
        token_hash: &[u8],
        browser: &str,
        now: i64,
    ) -> anyhow::Result<Option<(i64, Option<bool>)>> {
        let row: Option<(i64, Option<bool>)> = sqlx::query_as(
            "DELETE FROM pending_signins WHERE token_hash = $1 AND browser = $2 AND expires_at > $3
             RETURNING user_id, approved",
        )
        .bind(token_hash)
        .bind(browser)
        .bind(now)
        .fetch_optional(&self.0)
        .await?;
        Ok(row)
    }
}
