//! The accounts file (`$XDG_CONFIG_HOME/eauth/accounts.json`): where it is, who may read it,
//! its JSON schema, and changes that either happen whole or not at all.
//!
//! The file holds every secret in the clear (a desktop authenticator has nowhere better to
//! keep them without asking for a passphrase at each code), so it is created 0600 in a 0700
//! directory and a file others can read is refused rather than used. A change is written to a
//! temporary file in the same directory, flushed to disk, renamed over the old file and the
//! directory flushed too: a crash or a kill at any moment leaves the old file or the new one,
//! never a mix. Changes take an exclusive lock on a `.lock` file beside it so that two `eauth
//! add` at once cannot lose one of the two accounts; readers need no lock since rename is
//! atomic.

use std::{
    ffi::OsString,
    fs::{self, DirBuilder, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use eauth_core::{Algorithm, ClientId, Email, TotpParams, TotpSecret};
use serde::{Deserialize, Serialize};

use crate::account::{Account, Registration};

/// The version of the file's JSON layout this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Test hook: when set to a path, a change creates that file once the new accounts are in
/// the temporary file and flushed, then waits to be killed instead of renaming it. The tests
/// use it to kill `eauth add` in the one window where a non-atomic write would lose data.
pub const PAUSE_BEFORE_RENAME_ENV: &str = "EAUTH_TEST_PAUSE_BEFORE_RENAME";

/// Why the accounts file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Neither `--accounts`, `EAUTH_ACCOUNTS`, `XDG_CONFIG_HOME` nor `HOME` says where it is.
    #[error(
        "cannot tell where the accounts file is: set HOME or XDG_CONFIG_HOME, or pass --accounts FILE"
    )]
    NoLocation,
    /// Group or others may access the file: its secrets are no longer private.
    #[error(
        "{} can be accessed by other users (mode {mode:04o}) and holds secrets: \
         fix it with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file or its directory cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The change cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// What could not be written.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Not JSON of the expected shape, or an account in it is invalid.
    #[error("{} is damaged: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong, without any secret.
        reason: String,
    },
    /// Written by another version of `eauth`.
    #[error(
        "{} has schema version {found}, and this eauth reads version {SCHEMA_VERSION} only",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u64,
    },
}

/// The default location: `$XDG_CONFIG_HOME/eauth/accounts.json`, or
/// `$HOME/.config/eauth/accounts.json` when `XDG_CONFIG_HOME` is unset, empty or relative
/// (the XDG Base Directory specification says to ignore relative values).
///
/// XDG on every Unix, macOS included, because the command line is where the user looks for
/// it; that is why this is not `dirs::config_dir()`.
pub fn default_path(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let config = xdg_config_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|dir| dir.is_absolute())
                .map(|home| home.join(".config"))
        })?;
    Some(config.join("eauth").join("accounts.json"))
}

/// The accounts file at a given path.
#[derive(Debug, Clone)]
pub struct AccountsFile {
    path: PathBuf,
}

#[derive(Deserialize)]
struct Header {
    version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    accounts: Vec<StoredAccount>,
}

/// Unknown fields are refused: a file this version does not fully understand must not be
/// rewritten by it, which would drop what it did not understand.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAccount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    name: String,
    secret: String,
    algorithm: String,
    digits: u8,
    period: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

impl StoredAccount {
    fn from_account(account: &Account) -> Self {
        let params = account.params();
        Self {
            issuer: account.issuer().map(str::to_owned),
            name: account.name().to_owned(),
            secret: account.secret().to_base32(),
            algorithm: params.algorithm().as_str().to_owned(),
            digits: params.digits(),
            period: params.period(),
            client_id: account.client_id().map(|id| id.to_string()),
            email: account.email().map(|email| email.as_str().to_owned()),
        }
    }

    /// Checks the record as strictly as a URI: a hand-edited file gets the same rules.
    fn into_account(self) -> Result<Account, String> {
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err("the name is empty".into());
        }
        let issuer = self
            .issuer
            .map(|issuer| issuer.trim().to_owned())
            .filter(|issuer| !issuer.is_empty());
        let secret = TotpSecret::parse_any_length(&self.secret).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::parse(&self.algorithm)
            .ok_or_else(|| format!("unsupported algorithm {:?}", self.algorithm))?;
        let params = TotpParams::new(algorithm, self.digits.into(), self.period.into())
            .map_err(|e| e.to_string())?;
        let registration = Registration {
            client_id: self
                .client_id
                .map(|raw| ClientId::parse(&raw))
                .transpose()
                .map_err(|e| e.to_string())?,
            email: self
                .email
                .map(|raw| Email::parse(&raw))
                .transpose()
                .map_err(|e| e.to_string())?,
        };
        Ok(Account::new(issuer, name, secret, params, registration))
    }
}

impl AccountsFile {
    /// The file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every account, in the order they were added; none when the file does not exist yet.
    pub fn load(&self) -> Result<Vec<Account>, StoreError> {
        load_from(&self.path)
    }

    /// Loads the accounts, lets `change` modify them, and writes them back atomically. When
    /// `change` fails nothing is written: the file stays byte for byte as it was.
    pub fn update<T, E>(
        &self,
        change: impl FnOnce(&mut Vec<Account>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // Resolve a symbolic link (dotfile managers use them) so that the rename replaces the
        // file it points to, not the link.
        let path = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = parent_dir(&path);
        create_private_dir(dir)?;
        let _lock = lock(&path)?;
        let mut accounts = load_from(&path)?;
        let outcome = change(&mut accounts)?;
        remove_stale_temporary_files(&path);
        write_atomically(&path, &serialize(&accounts))?;
        Ok(outcome)
    }
}

fn load_from(path: &Path) -> Result<Vec<Account>, StoreError> {
    let read_error = |source| StoreError::Read {
        path: path.to_owned(),
        source,
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(read_error(error)),
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = fs::read(path).map_err(read_error)?;
    parse(path, &bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Account>, StoreError> {
    // serde_json's messages quote no input, only line and column: no secret leaks into them.
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    if header.version != u64::from(SCHEMA_VERSION) {
        return Err(StoreError::Version {
            path: path.to_owned(),
            found: header.version,
        });
    }
    let file: FileV1 = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    let mut accounts: Vec<Account> = Vec::with_capacity(file.accounts.len());
    for (index, stored) in file.accounts.into_iter().enumerate() {
        let account = stored
            .into_account()
            .map_err(|reason| damaged(format!("account {}: {reason}", index + 1)))?;
        if accounts.iter().any(|a| a.is_same_account_as(&account)) {
            return Err(damaged(format!(
                "account {} repeats {}",
                index + 1,
                account.label()
            )));
        }
        accounts.push(account);
    }
    Ok(accounts)
}

fn serialize(accounts: &[Account]) -> Vec<u8> {
    let file = FileV1 {
        version: SCHEMA_VERSION,
        accounts: accounts.iter().map(StoredAccount::from_account).collect(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&file).expect("BUG: the accounts file serializes to JSON");
    bytes.push(b'\n');
    bytes
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates the directory (and missing parents) as 0700; an existing one is left as it is, since
/// it may be shared on purpose (`--accounts /some/dir/file`).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Write {
            path: dir.to_owned(),
            source,
        })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Held for the whole read-modify-write; the kernel releases it when the process dies, so a
/// killed `eauth` never leaves a stale lock behind.
fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = sibling(path, ".lock");
    let write_error = |source| StoreError::Write {
        path: lock_path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(write_error)?;
    file.lock().map_err(write_error)?;
    Ok(file)
}

fn temporary_prefix(path: &Path) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    prefix
}

const TEMPORARY_SUFFIX: &str = ".tmp";

/// Removes the temporary files of writers that were killed before their rename. They hold
/// secrets, so they should not linger; the lock guarantees no live writer owns one.
/// Best effort: a file that cannot be removed costs disk space, not correctness.
fn remove_stale_temporary_files(path: &Path) {
    let prefix = temporary_prefix(path);
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&*prefix.to_string_lossy()) && name.ends_with(TEMPORARY_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    let write_error = |source| StoreError::Write {
        path: path.to_owned(),
        source,
    };
    // tempfile creates the file 0600 with a random name, so the secrets are never readable by
    // others, not even for the moment before the rename.
    let mut temporary = tempfile::Builder::new()
        .prefix(&temporary_prefix(path))
        .suffix(TEMPORARY_SUFFIX)
        .tempfile_in(dir)
        .map_err(write_error)?;
    temporary.write_all(bytes).map_err(write_error)?;
    temporary.as_file().sync_all().map_err(write_error)?;
    pause_for_tests();
    temporary
        .persist(path)
        .map_err(|error| write_error(error.error))?;
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(write_error)
}

fn pause_for_tests() {
    if let Some(signal) = std::env::var_os(PAUSE_BEFORE_RENAME_ENV) {
        let _ = fs::write(signal, b"paused");
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn the_default_path_follows_the_xdg_base_directory_specification() {
        let expected = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            default_path(os("/x/conf"), os("/home/u")),
            expected("/x/conf/eauth/accounts.json")
        );
        assert_eq!(
            default_path(None, os("/home/u")),
            expected("/home/u/.config/eauth/accounts.json")
        );
        assert_eq!(
            default_path(os(""), os("/home/u")),
            expected("/home/u/.config/eauth/accounts.json")
        );
        assert_eq!(
            default_path(os("relative/conf"), os("/home/u")),
            expected("/home/u/.config/eauth/accounts.json")
        );
        assert_eq!(default_path(None, None), None);
        assert_eq!(default_path(None, os("")), None);
    }

    fn stored(json: &str) -> Result<Vec<Account>, StoreError> {
        parse(Path::new("accounts.json"), json.as_bytes())
    }

    #[test]
    fn a_file_written_is_read_back_the_same() {
        let uri = "otpauth://totp/ACME%20Co:john?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ\
                   &issuer=ACME%20Co&algorithm=SHA512&digits=8&period=60\
                   &client_id=84c2ad6c-62eb-4217-8f46-a66852e6fe92&email=John@Example.com";
        let account = crate::uri::parse(uri).expect("valid").account;
        let plain = crate::uri::parse("otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP")
            .expect("valid")
            .account;
        let bytes = serialize(&[account.clone(), plain]);
        let text = String::from_utf8(bytes.clone()).expect("UTF-8");
        assert!(text.starts_with("{\n  \"version\": 1,"), "{text}");
        assert!(
            !text.contains("\"issuer\": null"),
            "absent fields are left out"
        );
        let back = parse(Path::new("a"), &bytes).expect("parses");
        assert_eq!(back.len(), 2);
        assert_eq!(serialize(&back), bytes);
        assert_eq!(back[0].label(), "ACME Co:john");
        assert_eq!(back[0].code_at(1_234_567), account.code_at(1_234_567));
        assert_eq!(back[0].email().map(Email::as_str), Some("john@example.com"));
        assert_eq!(back[1].label(), "bob");
    }

    #[test]
    fn damaged_and_foreign_files_are_refused_without_showing_secrets() {
        let account =
            r#"{"name":"a","secret":"JBSWY3DPEHPK3PXP","algorithm":"SHA1","digits":6,"period":30}"#;
        let cases = [
            ("", "damaged"),
            ("[]", "damaged"),
            (r#"{"accounts":[]}"#, "damaged"),
            (r#"{"version":2,"accounts":[]}"#, "schema version 2"),
            (r#"{"version":1}"#, "damaged"),
            (r#"{"version":1,"accounts":[],"extra":1}"#, "unknown field"),
            (
                &format!(r#"{{"version":1,"accounts":[{account},{account}]}}"#),
                "account 2 repeats a",
            ),
            (
                r#"{"version":1,"accounts":[{"name":"a","secret":"SECRET!!","algorithm":"SHA1","digits":6,"period":30}]}"#,
                "account 1: secret is not valid base32",
            ),
            (
                r#"{"version":1,"accounts":[{"name":"a","secret":"JBSWY3DPEHPK3PXP","algorithm":"MD5","digits":6,"period":30}]}"#,
                "unsupported algorithm",
            ),
            (
                r#"{"version":1,"accounts":[{"name":"a","secret":"JBSWY3DPEHPK3PXP","algorithm":"SHA1","digits":9,"period":30}]}"#,
                "digits",
            ),
            (
                r#"{"version":1,"accounts":[{"name":" ","secret":"JBSWY3DPEHPK3PXP","algorithm":"SHA1","digits":6,"period":30}]}"#,
                "name is empty",
            ),
            (
                r#"{"version":1,"accounts":[{"name":"a","secret":"JBSWY3DPEHPK3PXP","algorithm":"SHA1","digits":6,"period":30,"pin":1}]}"#,
                "unknown field",
            ),
        ];
        for (json, expected) in cases {
            let message = stored(json).expect_err(json).to_string();
            assert!(message.contains(expected), "{json}: {message}");
            assert!(!message.contains("JBSWY3DPEHPK3PXP"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        let empty = stored(r#"{"version":1,"accounts":[]}"#).expect("valid");
        assert!(empty.is_empty());
    }
}
