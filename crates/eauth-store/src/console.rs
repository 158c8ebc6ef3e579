//! The Domain Console's storage: accounts and their sessions, the sign-in throttle's failures,
//! the audit log, and each application's record of what happened (enrolled users, sign-ins,
//! callbacks, outcomes over time), a page at a time.
//!
//! Applications are looked up by owner here; the console loads an application through
//! [`Store::owned_application`] before it reads or changes anything of it, so a guessed id
//! of another account's application finds nothing.

use std::net::IpAddr;

use eauth_core::{ApplicationName, ClientId, Email, SessionStatus, console::AuditAction};
use uuid::Uuid;

use crate::{
    Application, Callback, Pool, Result, Session, Store, StoreError, db,
    records::{ApplicationRow, CallbackRow, SessionRow, corrupt},
};

/// A console account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its email, the name it signs in with.
    pub email: Email,
    /// Its password's argon2id PHC string.
    pub password_hash: String,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    email: String,
    password_hash: String,
    created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self> {
        Ok(Self {
            email: Email::parse(&row.email).map_err(|e| corrupt("account email", e))?,
            password_hash: row.password_hash,
            created_at: row.created_at,
        })
    }
}

/// Which console sessions are still alive: used after `last_seen_after` and created after
/// `created_after` (the idle and the absolute limit, as instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCutoffs {
    /// Unix seconds; a session last used at or before this has been idle too long.
    pub last_seen_after: i64,
    /// Unix seconds; a session created at or before this is too old.
    pub created_after: i64,
}

/// Which rows of a list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to read at most.
    pub limit: u32,
}

/// Some rows of a list, and how many rows the whole list has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows asked for.
    pub items: Vec<T>,
    /// Rows in the whole list (with the same filter).
    pub total: u64,
}

impl<T> Page<T> {
    /// The page of `rows`, each converted, out of `total`.
    fn of<R>(rows: Vec<R>, total: i64, convert: impl FnMut(R) -> Result<T>) -> Result<Self> {
        Ok(Self {
            items: rows.into_iter().map(convert).collect::<Result<_>>()?,
            total: count(total, "row count")?,
        })
    }
}

/// A user enrolled with an application, as the console lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledUser {
    /// The user.
    pub email: Email,
    /// Unix seconds of the (latest) ENABLE.
    pub enabled_at: i64,
    /// Unix seconds of the last approved sign-in, if any.
    pub last_signin_at: Option<i64>,
    /// Wrong codes since the last success.
    pub consecutive_failures: u32,
    /// Unix seconds at which too many failures locked it.
    pub locked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct EnrolledUserRow {
    email: String,
    enabled_at: i64,
    last_signin_at: Option<i64>,
    consecutive_failures: i32,
    locked_at: Option<i64>,
}

impl TryFrom<EnrolledUserRow> for EnrolledUser {
    type Error = StoreError;

    fn try_from(row: EnrolledUserRow) -> Result<Self> {
        Ok(Self {
            email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            enabled_at: row.enabled_at,
            last_signin_at: row.last_signin_at,
            consecutive_failures: u32::try_from(row.consecutive_failures)
                .map_err(|e| corrupt("consecutive_failures", e))?,
            locked_at: row.locked_at,
        })
    }
}

/// Which sign-ins to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions in this state.
    pub status: Option<SessionStatus>,
    /// Only users whose email contains this (case-insensitively).
    pub email: Option<String>,
}

/// A callback with the user its session was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEntry {
    /// The callback.
    pub callback: Callback,
    /// Its session's user.
    pub email: Email,
}

#[derive(sqlx::FromRow)]
struct CallbackEntryRow {
    #[sqlx(flatten)]
    callback: CallbackRow,
    email: String,
}

/// How many sessions of an application ended one way within one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeCount {
    /// Unix seconds at which the bucket starts (a multiple of the bucket's length).
    pub bucket_start: i64,
    /// How they ended.
    pub status: SessionStatus,
    /// How many.
    pub count: u64,
}

#[derive(sqlx::FromRow)]
struct OutcomeCountRow {
    bucket_start: i64,
    status: String,
    count: i64,
}

/// An entry to add to the audit log.
#[derive(Debug, Clone, Copy)]
pub struct NewAuditEntry<'a> {
    /// The account that acted.
    pub actor: &'a Email,
    /// What it did.
    pub action: AuditAction,
    /// To which application, if to one: its id and its name at the time.
    pub application: Option<(ClientId, &'a ApplicationName)>,
    /// More, in words (never a secret).
    pub detail: Option<&'a str>,
    /// The address the request came from.
    pub source_ip: IpAddr,
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// Unix seconds.
    pub at: i64,
    /// The account that acted.
    pub actor: Email,
    /// What it did.
    pub action: AuditAction,
    /// To which application, if to one.
    pub client_id: Option<ClientId>,
    /// The application's name at the time.
    pub application_name: Option<String>,
    /// More, in words.
    pub detail: Option<String>,
    /// The address the request came from.
    pub source_ip: String,
}

#[derive(sqlx::FromRow)]
struct AuditEntryRow {
    id: String,
    at: i64,
    actor_email: String,
    action: String,
    client_id: Option<String>,
    application_name: Option<String>,
    detail: Option<String>,
    source_ip: String,
}

impl TryFrom<AuditEntryRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditEntryRow) -> Result<Self> {
        Ok(Self {
            id: Uuid::parse_str(&row.id).map_err(|e| corrupt("audit id", e))?,
            at: row.at,
            actor: Email::parse(&row.actor_email).map_err(|e| corrupt("actor_email", e))?,
            action: AuditAction::parse(&row.action)
                .ok_or_else(|| corrupt("audit action", &row.action))?,
            client_id: row
                .client_id
                .as_deref()
                .map(ClientId::parse)
                .transpose()
                .map_err(|e| corrupt("audit client_id", e))?,
            application_name: row.application_name,
            detail: row.detail,
            source_ip: row.source_ip,
        })
    }
}

/// A `LIKE` pattern matching values that contain `term`, with `term`'s own wildcards escaped
/// (for `ESCAPE '\'`); `None` for a blank term. Emails are stored lower-cased, so the term is
/// too.
fn contains_pattern(term: Option<&str>) -> Option<String> {
    let term = term.map(str::trim).filter(|t| !t.is_empty())?;
    let mut pattern = String::from("%");
    for c in term.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

fn count(raw: i64, what: &str) -> Result<u64> {
    u64::try_from(raw).map_err(|e| corrupt(what, e))
}

fn limit_offset(page: PageRequest) -> (i64, i64) {
    (
        i64::from(page.limit),
        i64::try_from(page.offset).unwrap_or(i64::MAX),
    )
}

impl Store {
    /// Creates a console account; [`StoreError::Conflict`] if the email has one already.
    pub async fn insert_account(&self, email: &Email, password_hash: &str, now: i64) -> Result<()> {
        let (email, password_hash) = (email.as_str().to_owned(), password_hash.to_owned());
        write_one!(self, conn => conn.execute(
            "INSERT INTO console_accounts (email, password_hash, created_at) VALUES ($1, $2, $3)",
            &args![email, password_hash, now],
        ).await)?;
        Ok(())
    }

    /// The account with this email.
    pub async fn account(&self, email: &Email) -> Result<Option<Account>> {
        let row: Option<AccountRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT email, password_hash, created_at FROM console_accounts WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(pool)
        .await?);
        row.map(Account::try_from).transpose()
    }

    /// Starts a console session for `email`, known by the hash of its token.
    pub async fn insert_console_session(
        &self,
        token_hash: &[u8; 32],
        email: &Email,
        now: i64,
    ) -> Result<()> {
        let (token_hash, email) = (token_hash.to_vec(), email.as_str().to_owned());
        write_one!(self, conn => conn.execute(
            "INSERT INTO console_sessions (token_hash, email, created_at, last_seen_at) VALUES ($1, $2, $3, $3)",
            &args![token_hash, email, now],
        ).await)?;
        Ok(())
    }

    /// The account of a live console session, which counts as used at `now`; `None` if there
    /// is no such session or it has expired (idle too long, or too old).
    pub async fn touch_console_session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
        cutoffs: SessionCutoffs,
    ) -> Result<Option<Email>> {
        let token_hash = token_hash.to_vec();
        let email: Option<(String,)> = write_one!(self, conn => conn.fetch_optional(
            "UPDATE console_sessions SET last_seen_at = $2
             WHERE token_hash = $1 AND last_seen_at > $3 AND created_at > $4 RETURNING email",
            &args![token_hash, now, cutoffs.last_seen_after, cutoffs.created_after],
        ).await)?;
        email
            .map(|(e,)| Email::parse(&e).map_err(|e| corrupt("session email", e)))
            .transpose()
    }

    /// Ends a console session; `false` if there was none.
    pub async fn delete_console_session(&self, token_hash: &[u8; 32]) -> Result<bool> {
        let token_hash = token_hash.to_vec();
        let deleted = write_one!(self, conn => conn.execute(
            "DELETE FROM console_sessions WHERE token_hash = $1",
            &args![token_hash],
        ).await)?;
        Ok(deleted == 1)
    }

    /// Forgets expired console sessions; returns how many.
    pub async fn prune_console_sessions(&self, cutoffs: SessionCutoffs) -> Result<u64> {
        write_one!(self, conn => conn.execute(
            "DELETE FROM console_sessions WHERE last_seen_at <= $1 OR created_at <= $2",
            &args![cutoffs.last_seen_after, cutoffs.created_after],
        ).await)
    }

    /// Counts one failed sign-in under each of `keys`.
    pub async fn record_signin_failure(&self, keys: &[String], now: i64) -> Result<()> {
        let keys = keys.to_vec();
        write_in!(self, conn => {
            for key in &keys {
                conn.execute(
                    "INSERT INTO console_signin_failures (throttle_key, failed_at) VALUES ($1, $2)",
                    &args![key, now],
                )
                .await?;
            }
            Ok(())
        })
    }

    /// Failed sign-ins counted under `key` after `since`.
    pub async fn signin_failures(&self, key: &str, since: i64) -> Result<u32> {
        let n: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_signin_failures WHERE throttle_key = $1 AND failed_at > $2",
        )
        .bind(key)
        .bind(since)
        .fetch_one(pool)
        .await?);
        u32::try_from(n).map_err(|e| corrupt("failure count", e))
    }

    /// Forgets the failures counted under `key` (after a successful sign-in).
    pub async fn clear_signin_failures(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        write_one!(self, conn => conn.execute(
            "DELETE FROM console_signin_failures WHERE throttle_key = $1",
            &args![key],
        ).await)?;
        Ok(())
    }

    /// Forgets failures at or before `before`, which no window counts any more.
    pub async fn prune_signin_failures(&self, before: i64) -> Result<u64> {
        write_one!(self, conn => conn.execute(
            "DELETE FROM console_signin_failures WHERE failed_at <= $1",
            &args![before],
        ).await)
    }

    /// The applications `owner` created in the console, oldest first.
    pub async fn applications_of(&self, owner: &Email) -> Result<Vec<Application>> {
        let rows: Vec<ApplicationRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", application_columns!(),
            " FROM applications WHERE owner_email = $1 ORDER BY created_at, client_id"
        ))
        .bind(owner.as_str())
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Application::try_from).collect()
    }

    /// The application with this id if `owner` owns it; `None` for another account's.
    pub async fn owned_application(
        &self,
        client_id: ClientId,
        owner: &Email,
    ) -> Result<Option<Application>> {
        let row: Option<ApplicationRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", application_columns!(),
            " FROM applications WHERE client_id = $1 AND owner_email = $2"
        ))
        .bind(client_id.to_string())
        .bind(owner.as_str())
        .fetch_optional(pool)
        .await?);
        row.map(Application::try_from).transpose()
    }

    /// Replaces an application's name, addresses, callback URL and redirect URIs with those
    /// of `app`; `false` if there is no application with its id. Keys, owner and activation
    /// are left alone.
    pub async fn update_application_settings(&self, app: &Application, now: i64) -> Result<bool> {
        let (ips, redirects) = crate::settings_json(app);
        self.update_application(
            "name = $2, ip_allow_list = $3, redirect_uris = $4, callback_url = $5, updated_at = $6",
            vec![
                app.client_id.to_string().into(),
                app.name.as_str().to_owned().into(),
                ips.into(),
                redirects.into(),
                app.callback_url.to_string().into(),
                now.into(),
            ],
        )
        .await
    }

    /// Replaces an application's sealed callback secret; the next callback is signed with the
    /// new one. `false` if there is no application with this id.
    pub async fn replace_callback_secret(
        &self,
        client_id: ClientId,
        sealed: &[u8],
        now: i64,
    ) -> Result<bool> {
        self.update_application(
            "sealed_callback_secret = $2, updated_at = $3",
            vec![
                client_id.to_string().into(),
                sealed.to_vec().into(),
                now.into(),
            ],
        )
        .await
    }

    /// Deletes an application with its enrollments, sessions and callbacks (the foreign keys
    /// cascade); `false` if there was none.
    pub async fn delete_application(&self, client_id: ClientId) -> Result<bool> {
        self.change_application(
            "DELETE FROM applications WHERE client_id = $1".to_owned(),
            vec![client_id.to_string().into()],
        )
        .await
    }

    /// An application's enrolled users whose email contains `search`, by email.
    pub async fn enrolled_users(
        &self,
        client_id: ClientId,
        search: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<EnrolledUser>> {
        let pattern = contains_pattern(search);
        let (limit, offset) = limit_offset(page);
        let (rows, total): (Vec<EnrolledUserRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(
                "SELECT e.email, e.enabled_at, e.consecutive_failures, e.locked_at,
                     e.last_approved_at AS last_signin_at
                 FROM enrollments e
                 WHERE e.client_id = $1 AND ($2 IS NULL OR e.email LIKE $2 ESCAPE '\\')
                 ORDER BY e.email LIMIT $3 OFFSET $4",
            )
            .bind(client_id.to_string())
            .bind(pattern.as_deref())
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM enrollments WHERE client_id = $1 AND ($2 IS NULL OR email LIKE $2 ESCAPE '\\')",
            )
            .bind(client_id.to_string())
            .bind(pattern.as_deref())
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        Page::of(rows, total, EnrolledUser::try_from)
    }

    /// Clears a user's failures and lock, as a successful sign-in would; the secret and the
    /// replay state stay. `false` if the user is not enrolled.
    pub async fn unlock_enrollment(&self, client_id: ClientId, email: &Email) -> Result<bool> {
        let email = email.as_str().to_owned();
        let changed = write_one!(self, conn => conn.execute(
            "UPDATE enrollments SET consecutive_failures = 0, last_failure_at = NULL, locked_at = NULL
             WHERE client_id = $1 AND email = $2",
            &args![client_id.to_string(), email],
        ).await)?;
        Ok(changed == 1)
    }

    /// An application's sign-in sessions that pass `filter`, newest first.
    pub async fn sessions_of(
        &self,
        client_id: ClientId,
        filter: &SessionFilter,
        page: PageRequest,
    ) -> Result<Page<Session>> {
        let pattern = contains_pattern(filter.email.as_deref());
        let status = filter.status.map(SessionStatus::as_str);
        let (limit, offset) = limit_offset(page);
        let (rows, total): (Vec<SessionRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(concat!(
                "SELECT ", session_columns!(), " FROM sessions
                 WHERE client_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR email LIKE $3 ESCAPE '\\')
                 ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
            ))
            .bind(client_id.to_string())
            .bind(status)
            .bind(pattern.as_deref())
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions
                 WHERE client_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR email LIKE $3 ESCAPE '\\')",
            )
            .bind(client_id.to_string())
            .bind(status)
            .bind(pattern.as_deref())
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        Page::of(rows, total, Session::try_from)
    }

    /// An application's callbacks, newest first, with their sessions' users.
    pub async fn callbacks_of(
        &self,
        client_id: ClientId,
        page: PageRequest,
    ) -> Result<Page<CallbackEntry>> {
        let (limit, offset) = limit_offset(page);
        let (rows, total): (Vec<CallbackEntryRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(concat!(
                "SELECT ", callback_columns!(),
                ", (SELECT email FROM sessions WHERE sessions.id = callbacks.session_id) AS email
                 FROM callbacks WHERE client_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
            ))
            .bind(client_id.to_string())
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM callbacks WHERE client_id = $1")
                .bind(client_id.to_string())
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        Page::of(rows, total, |row| {
            Ok(CallbackEntry {
                callback: Callback::try_from(row.callback)?,
                email: Email::parse(&row.email).map_err(|e| corrupt("email", e))?,
            })
        })
    }

    /// Queues one of an application's callbacks, pending or given up, for delivery at `now`
    /// (the worker's next pass). `false` if it is not the application's, was delivered, or is
    /// being delivered right now (its lease holds: that attempt is already the next one).
    pub async fn requeue_callback(&self, client_id: ClientId, id: Uuid, now: i64) -> Result<bool> {
        let changed = write_one!(self, conn => conn.execute(
            "UPDATE callbacks SET status = 'PENDING', next_attempt_at = $3
             WHERE id = $1 AND client_id = $2 AND status IN ('PENDING', 'FAILED')
               AND (lease_until IS NULL OR lease_until <= $3)",
            &args![id.to_string(), client_id.to_string(), now],
        ).await)?;
        Ok(changed == 1)
    }

    /// How an application's sessions finished since `since`, counted per bucket of
    /// `bucket_secs` (buckets start at multiples of it, in Unix time) and outcome. Pending
    /// sessions are not outcomes yet. Only non-empty buckets are returned.
    pub async fn outcome_counts(
        &self,
        client_id: ClientId,
        since: i64,
        bucket_secs: i64,
    ) -> Result<Vec<OutcomeCount>> {
        let rows: Vec<OutcomeCountRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT (finished_at / $2) * $2 AS bucket_start, status, COUNT(*) AS count
             FROM sessions WHERE client_id = $1 AND finished_at >= $3 AND status <> 'PENDING'
             GROUP BY bucket_start, status ORDER BY bucket_start, status",
        )
        .bind(client_id.to_string())
        .bind(bucket_secs.max(1))
        .bind(since)
        .fetch_all(pool)
        .await?);
        rows.into_iter()
            .map(|row| {
                Ok(OutcomeCount {
                    bucket_start: row.bucket_start,
                    status: SessionStatus::parse(&row.status)
                        .ok_or_else(|| corrupt("status", &row.status))?,
                    count: count(row.count, "outcome count")?,
                })
            })
            .collect()
    }

    /// Adds an entry to the audit log.
    pub async fn insert_audit(&self, entry: &NewAuditEntry<'_>, now: i64) -> Result<()> {
        let row: Vec<db::Value<'static>> = args![
            Uuid::now_v7().to_string(),
            now,
            entry.actor.as_str().to_owned(),
            entry.action.as_str(),
            entry.application.map(|(id, _)| id.to_string()),
            entry.application.map(|(_, name)| name.as_str().to_owned()),
            entry.detail.map(str::to_owned),
            entry.source_ip.to_string()
        ]
        .into();
        write_one!(self, conn => conn.execute(
            "INSERT INTO console_audit (id, at, actor_email, action, client_id, application_name, detail, source_ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &row,
        ).await)?;
        Ok(())
    }

    /// What `actor` did, newest first; only to `client_id` if given.
    pub async fn audit_log(
        &self,
        actor: &Email,
        client_id: Option<ClientId>,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let client_id = client_id.map(|id| id.to_string());
        let (limit, offset) = limit_offset(page);
        let (rows, total): (Vec<AuditEntryRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(
                "SELECT id, at, actor_email, action, client_id, application_name, detail, source_ip
                 FROM console_audit WHERE actor_email = $1 AND ($2 IS NULL OR client_id = $2)
                 ORDER BY id DESC LIMIT $3 OFFSET $4",
            )
            .bind(actor.as_str())
            .bind(client_id.as_deref())
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM console_audit WHERE actor_email = $1 AND ($2 IS NULL OR client_id = $2)",
            )
            .bind(actor.as_str())
            .bind(client_id.as_deref())
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        Page::of(rows, total, AuditEntry::try_from)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_terms_match_literally() {
        assert_eq!(contains_pattern(None), None);
        assert_eq!(contains_pattern(Some("  ")), None);
        assert_eq!(contains_pattern(Some(" Jane ")).as_deref(), Some("%jane%"));
        assert_eq!(
            contains_pattern(Some("a_b%c\\")).as_deref(),
            Some("%a\\_b\\%c\\\\%")
        );
    }
}
