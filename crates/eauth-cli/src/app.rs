//! The commands of `eauth` (add, list, code, remove) over the library's parts, and the one
//! error type whose variants the binary turns into a message and an exit code.

use std::{
    io::{self, Read},
    path::Path,
};

use crate::{
    account::{self, Account, SelectError},
    qr::{self, QrError},
    render,
    store::{AccountsFile, StoreError},
    uri::{self, Provisioning, UriError, Warning},
};

/// Exit code when the user's input is wrong: a bad URI or image, an unknown or duplicate
/// account, bad arguments (clap uses it for those too). Nothing was changed.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when `eauth` cannot do its work although the input was right: the accounts file
/// is unreadable, damaged or too open, a write failed.
pub const EXIT_FAILURE: u8 = 1;

/// A URI on standard input is a line; anything much longer is not a URI.
const MAX_STDIN_BYTES: u64 = 64 * 1024;

/// Why a command failed. Each message is one line and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The provisioning URI is refused.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// No URI could be read from the image.
    #[error(transparent)]
    Qr(#[from] QrError),
    /// The account name on the command line picks no single account.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// An account with this issuer and name exists already.
    #[error("{0} is already an account; to replace it, remove it first (`eauth remove {0:?}`)")]
    Duplicate(String),
    /// The accounts file cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Standard input could not be read.
    #[error("cannot read the URI from standard input: {0}")]
    Stdin(io::Error),
}

impl Error {
    /// The process exit code for this error: [`EXIT_BAD_INPUT`] or [`EXIT_FAILURE`].
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Uri(_) | Self::Qr(_) | Self::Select(_) | Self::Duplicate(_) => EXIT_BAD_INPUT,
            Self::Store(_) | Self::Stdin(_) => EXIT_FAILURE,
        }
    }
}

/// An account that was added.
#[derive(Debug)]
pub struct Added {
    /// Its label (`issuer:name`).
    pub label: String,
    /// What the user should know about it.
    pub warnings: Vec<Warning>,
}

/// Adds the account of an `otpauth://totp/` URI. A duplicate (same issuer and name) is refused
/// and the file left untouched: silently replacing a secret would break the user's sign-in.
pub fn add(file: &AccountsFile, uri: &str) -> Result<Added, Error> {
    let Provisioning { account, warnings } = uri::parse(uri)?;
    let label = account.label();
    file.update(|accounts| {
        if accounts
            .iter()
            .any(|known| known.is_same_account_as(&account))
        {
            return Err(Error::Duplicate(label.clone()));
        }
        accounts.push(account);
        Ok(())
    })?;
    Ok(Added { label, warnings })
}

/// Adds the account of the `otpauth://totp/` URI in the QR code of a PNG or JPEG image.
pub fn add_from_qr(file: &AccountsFile, image: &Path) -> Result<Added, Error> {
    let text = qr::read_text(image)?;
    add(file, &text)
}

/// Reads a URI from `input` (`eauth add -`), so that the secret stays out of the shell's
/// history and the process list.
pub fn read_uri(input: impl Read) -> Result<String, Error> {
    let mut text = String::new();
    input
        .take(MAX_STDIN_BYTES)
        .read_to_string(&mut text)
        .map_err(Error::Stdin)?;
    Ok(text)
}

/// Every account, in the order they were added.
pub fn list(file: &AccountsFile) -> Result<Vec<Account>, Error> {
    Ok(file.load()?)
}

/// The code line (code, seconds left, label) of the account `query` names at `now`.
pub fn code(file: &AccountsFile, query: Option<&str>, now: u64) -> Result<String, Error> {
    let accounts = file.load()?;
    let index = account::select(&accounts, query)?;
    Ok(render::code_line(&accounts[index], now))
}

/// The accounts to watch: the one `query` names, or all of them.
pub fn watched(file: &AccountsFile, query: Option<&str>) -> Result<Vec<Account>, Error> {
    let mut accounts = file.load()?;
    match query {
        Some(_) => {
            let index = account::select(&accounts, query)?;
            Ok(vec![accounts.swap_remove(index)])
        }
        None if accounts.is_empty() => Err(SelectError::NoAccounts.into()),
        None => Ok(accounts),
    }
}

/// Removes the account `query` names and returns its label.
pub fn remove(file: &AccountsFile, query: &str) -> Result<String, Error> {
    file.update(|accounts| {
        let index = account::select(accounts, Some(query))?;
        Ok(accounts.remove(index).label())
    })
}
