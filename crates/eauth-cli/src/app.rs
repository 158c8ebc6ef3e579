//! The commands of `eauth` (add, list, code, remove, approve, deny) over the library's parts,
//! and the one error type whose variants the binary turns into a message and an exit code.

use std::{
    io::{self, Read},
    path::Path,
    sync::{Arc, mpsc},
    time::Duration,
};

use eauth_core::DeviceKey;
use url::Url;

use crate::{
    account::{self, Account, SelectError},
    push::{self, Device, PendingSignin, PushError, Service},
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
    /// `--server` with a URI that has no `client_id` and `email`.
    #[error(
        "{0} cannot be registered for push approval: its URI has no client_id and email \
         (use the QR code of an eAuthenticator portal, or leave out --server)"
    )]
    NotRegistrable(String),
    /// The service refused, could not be reached, or `--server`/`--ca-cert` are unusable.
    #[error(transparent)]
    Push(#[from] PushError),
    /// `approve` or `deny` without a registered account.
    #[error(
        "no account is registered for push approval: add one with `eauth add URI --server URL`"
    )]
    NoDevice,
    /// Nothing to approve or deny.
    #[error("no sign-in is waiting for approval (`eauth approve --wait` waits for one)")]
    NothingPending,
    /// The named sign-in is not pending.
    #[error("no waiting sign-in has the id {0:?}")]
    UnknownSignin(String),
    /// Several sign-ins wait and none was named.
    #[error("{} sign-ins are waiting: name one by its id ({})", .0.len(), .0.join(", "))]
    AmbiguousSignin(Vec<String>),
    /// Not a two-digit number.
    #[error("the number shown in the browser has two digits (10 to 99); {0:?} is not one")]
    BadNumber(String),
    /// The service says the number is wrong.
    #[error("{}", wrong_number(*attempts_left))]
    WrongNumber {
        /// Numbers the sign-in still takes; 0 when this one refused it.
        attempts_left: u32,
    },
    /// A question on standard input went unanswered.
    #[error("no answer on standard input")]
    NoAnswer,
    /// `eauth remove` of a registered account whose device the service did not remove.
    #[error(
        "cannot unregister {label} from {server} ({cause}); nothing was removed: try again, or \
         remove it from this computer only with `eauth remove --local {label:?}` (its device \
         then stays registered until the portal sets up 2FA again)"
    )]
    StillRegistered {
        /// The account.
        label: String,
        /// The service's origin.
        server: String,
        /// Why the service did not remove the device.
        cause: Box<PushError>,
    },
}

fn wrong_number(attempts_left: u32) -> String {
    match attempts_left {
        0 => "that is not the number shown in the browser, for the third time: the sign-in was \
              refused"
            .to_owned(),
        1 => "that is not the number shown in the browser (1 attempt left)".to_owned(),
        n => format!("that is not the number shown in the browser ({n} attempts left)"),
    }
}

impl Error {
    /// The process exit code for this error: [`EXIT_BAD_INPUT`] or [`EXIT_FAILURE`].
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Uri(_)
            | Self::Qr(_)
            | Self::Select(_)
            | Self::Duplicate(_)
            | Self::NotRegistrable(_)
            | Self::NoDevice
            | Self::NothingPending
            | Self::UnknownSignin(_)
            | Self::AmbiguousSignin(_)
            | Self::BadNumber(_)
            | Self::WrongNumber { .. }
            | Self::NoAnswer => EXIT_BAD_INPUT,
            Self::Push(PushError::ServerUrl(_) | PushError::CaCert { .. }) => EXIT_BAD_INPUT,
            Self::Push(error) if error.code() == Some("NOT_FOUND") => EXIT_BAD_INPUT,
            Self::Store(_) | Self::Stdin(_) | Self::Push(_) | Self::StillRegistered { .. } => {
                EXIT_FAILURE
            }
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

/// Where and how `eauth add --server` registers an account for push approval.
pub struct Registering<'a> {
    /// The service.
    pub server: Url,
    /// The PEM certificate to trust for it (`--ca-cert`).
    pub ca_cert: Option<String>,
    /// What the device is called in the service's lists.
    pub name: String,
    /// Unix seconds now.
    pub clock: &'a dyn Fn() -> u64,
    /// Told how many seconds `eauth` waits for the next code when the current one was used.
    pub on_wait: &'a dyn Fn(u64),
}

/// Adds the account of an `otpauth://totp/` URI. A duplicate (same issuer and name) is refused
/// and the file left untouched: silently replacing a secret would break the user's sign-in.
///
/// With `registering`, the account is first registered with the service as a device (a new
/// key, proven with the current code); only then is it stored, with its device, so that a
/// refused registration changes nothing.
pub fn add(
    file: &AccountsFile,
    uri: &str,
    registering: Option<&Registering<'_>>,
) -> Result<Added, Error> {
    let Provisioning {
        mut account,
        warnings,
    } = uri::parse(uri)?;
    let label = account.label();
    let duplicate = |accounts: &[Account], account: &Account| {
        if accounts
            .iter()
            .any(|known| known.is_same_account_as(account))
        {
            Err(Error::Duplicate(label.clone()))
        } else {
            Ok(())
        }
    };
    if let Some(registering) = registering {
        // Checked before registering too: a device for an account that is not kept would be
        // left behind at the service.
        duplicate(&file.load()?, &account)?;
        account = account
            .clone()
            .with_device(register(&account, registering)?);
    }
    file.update(|accounts| {
        duplicate(accounts, &account)?;
        accounts.push(account);
        Ok::<_, Error>(())
    })?;
    Ok(Added { label, warnings })
}

/// The `otpauth://totp/` URI in the QR code of a PNG or JPEG image, to add.
pub fn read_qr(image: &Path) -> Result<String, Error> {
    Ok(qr::read_text(image)?)
}

/// Registers a new device key for the account, proving it with the current code. The service
/// marks the code used (as a sign-in would); if it already was, the next one is waited for,
/// once.
fn register(account: &Account, registering: &Registering<'_>) -> Result<Device, Error> {
    let (Some(client_id), Some(email)) = (account.client_id(), account.email()) else {
        return Err(Error::NotRegistrable(account.label()));
    };
    let service = Service::new(&registering.server, registering.ca_cert.as_deref())?;
    let key = DeviceKey::generate();
    let mut waited = false;
    loop {
        let now = (registering.clock)();
        let code = account.code_at(now);
        let seconds = i64::try_from(now).unwrap_or(i64::MAX);
        match service.register(&key, client_id, email, &code, &registering.name, seconds) {
            Ok(id) => {
                return Ok(Device {
                    id,
                    server: registering.server.clone(),
                    key,
                    ca_cert: registering.ca_cert.clone(),
                });
            }
            Err(error) if error.code() == Some("CODE_ALREADY_USED") && !waited => {
                let wait = account.seconds_left(now) + 1;
                (registering.on_wait)(wait);
                std::thread::sleep(Duration::from_secs(wait));
                waited = true;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A pending sign-in of one of the registered accounts.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The account's label.
    pub label: String,
    /// The sign-in.
    pub signin: PendingSignin,
    device: Arc<Device>,
}

fn registered(file: &AccountsFile) -> Result<Vec<(String, Arc<Device>)>, Error> {
    let devices: Vec<_> = file
        .load()?
        .iter()
        .filter_map(|account| Some((account.label(), account.device()?.clone())))
        .collect();
    if devices.is_empty() {
        return Err(Error::NoDevice);
    }
    Ok(devices)
}

fn waiting_of(
    label: &str,
    device: &Arc<Device>,
    signins: Vec<PendingSignin>,
) -> impl Iterator<Item = Waiting> {
    signins.into_iter().map(move |signin| Waiting {
        label: label.to_owned(),
        signin,
        device: device.clone(),
    })
}

/// The pending sign-ins of every registered account, now.
pub fn pending(file: &AccountsFile, clock: &dyn Fn() -> i64) -> Result<Vec<Waiting>, Error> {
    let mut all = Vec::new();
    for (label, device) in registered(file)? {
        let signins = Service::of(&device)?.pending(&device, None, clock())?;
        all.extend(waiting_of(&label, &device, signins));
    }
    Ok(all)
}

/// Waits for the next sign-in of any registered account: one long poll after another per
/// account, each on a thread of its own, until one of them finds something (the service
/// holds each poll up to 25 s; nothing here spins).
pub fn wait_for_pending(file: &AccountsFile, clock: fn() -> i64) -> Result<Vec<Waiting>, Error> {
    let (found, first) = mpsc::channel();
    for (label, device) in registered(file)? {
        let found = found.clone();
        std::thread::spawn(move || {
            let result = Service::of(&device).and_then(|service| {
                loop {
                    let signins = service.pending(&device, Some(push::MAX_WAIT_SECS), clock())?;
                    if !signins.is_empty() {
                        break Ok(signins);
                    }
                }
            });
            // The receiver is gone once another account's poll answered: nothing to do.
            let _ =
                found.send(result.map(|signins| waiting_of(&label, &device, signins).collect()));
        });
    }
    drop(found);
    // Threads still polling for other accounts end with the process.
    first
        .recv()
        .map_err(|_| Error::NothingPending)?
        .map_err(Error::from)
}

/// Which of `waiting` the user means: the one whose id starts with `query`, or the only one.
/// `None`: several wait and the user must choose.
pub fn select_signin(waiting: &[Waiting], query: Option<&str>) -> Result<Option<usize>, Error> {
    let Some(query) = query.map(str::trim) else {
        return match waiting.len() {
            0 => Err(Error::NothingPending),
            1 => Ok(Some(0)),
            _ => Ok(None),
        };
    };
    let query_lower = query.to_ascii_lowercase();
    let matching: Vec<usize> = (0..waiting.len())
        .filter(|&i| !query.is_empty() && waiting[i].signin.id.starts_with(&query_lower))
        .collect();
    match matching.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Err(Error::UnknownSignin(query.to_owned())),
        several => Err(Error::AmbiguousSignin(
            several
                .iter()
                .map(|&i| waiting[i].signin.id.clone())
                .collect(),
        )),
    }
}

/// The number as the user typed it: two digits, 10 to 99.
pub fn parse_number(typed: &str) -> Result<u8, Error> {
    typed
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (10..=99).contains(n))
        .ok_or_else(|| Error::BadNumber(typed.trim().to_owned()))
}

/// Approves a sign-in with the number shown in the browser.
pub fn approve(waiting: &Waiting, number: u8, now: i64) -> Result<(), Error> {
    let device = &waiting.device;
    Service::of(device)?
        .approve(device, &waiting.signin.id, number, now)
        .map_err(|error| match error {
            PushError::Refused { code, data, .. } if code == "WRONG_NUMBER" => Error::WrongNumber {
                attempts_left: data["attempts_left"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
            },
            other => other.into(),
        })
}

/// Denies a sign-in.
pub fn deny(waiting: &Waiting, now: i64) -> Result<(), Error> {
    let device = &waiting.device;
    Ok(Service::of(device)?.deny(device, &waiting.signin.id, now)?)
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

/// What `eauth remove` did about the removed account's device at the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unregistration {
    /// The account was not registered for push approval.
    NotRegistered,
    /// The service removed the device.
    Unregistered {
        /// The service's origin.
        server: String,
    },
    /// The service no longer knew the device (the portal set up 2FA again, or disabled it).
    AlreadyGone {
        /// The service's origin.
        server: String,
    },
    /// `--local`: the device is still registered at the service.
    StillRegistered {
        /// The service's origin.
        server: String,
    },
}

/// An account that was removed.
#[derive(Debug)]
pub struct Removed {
    /// Its label (`issuer:name`).
    pub label: String,
    /// What became of its device.
    pub device: Unregistration,
}

/// Removes the account `query` names. A registered account's device is unregistered first
/// (at `now`): if the service does not answer that it removed it, or no longer knew it, the
/// account is kept and the error says so, since a device left registered can still approve
/// sign-ins with any copy of its key. With `local` the account is removed from the file only,
/// and the caller warns that the device stays registered.
pub fn remove(file: &AccountsFile, query: &str, local: bool, now: i64) -> Result<Removed, Error> {
    let accounts = file.load()?;
    let account = accounts[account::select(&accounts, Some(query))?].clone();
    let label = account.label();
    let device = match account.device() {
        None => Unregistration::NotRegistered,
        Some(device) => {
            let server = device.server.origin().ascii_serialization();
            if local {
                Unregistration::StillRegistered { server }
            } else {
                match Service::of(device).and_then(|service| service.unregister(device, now)) {
                    Ok(()) => Unregistration::Unregistered { server },
                    Err(error) if error.code() == Some("UNKNOWN_DEVICE") => {
                        Unregistration::AlreadyGone { server }
                    }
                    Err(cause) => {
                        return Err(Error::StillRegistered {
                            label,
                            server,
                            cause: Box::new(cause),
                        });
                    }
                }
            }
        }
    };
    // The network call ran without the file's lock: remove the account picked, unless another
    // `eauth` removed it meanwhile, and keep whatever else changed.
    let device_id = account.device().map(|device| device.id);
    file.update(|accounts| {
        if let Some(index) = accounts.iter().position(|known| {
            known.is_same_account_as(&account) && known.device().map(|d| d.id) == device_id
        }) {
            accounts.remove(index);
        }
        Ok::<_, Error>(())
    })?;
    Ok(Removed { label, device })
}
