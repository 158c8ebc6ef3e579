//! `eauth`: the command-line authenticator. Parses arguments, reads the clock, installs the
//! Ctrl-C handler and prints; the work is done by the `eauth_cli` library.

use std::{
    io::{self, BufRead, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::{ArgGroup, Args, Parser, Subcommand};
use eauth_cli::{
    app::{self, Added, EXIT_FAILURE, Error, Registering, Unregistration},
    push, render,
    store::{self, AccountsFile, StoreError},
    watch,
};

#[derive(Parser)]
#[command(
    name = "eauth",
    version,
    about = "A command-line authenticator: TOTP codes for otpauth:// accounts",
    after_help = "Exit codes: 0 done, 1 the accounts file or the service cannot be used, 2 bad input (nothing was changed)."
)]
struct Cli {
    /// The accounts file [default: $XDG_CONFIG_HOME/eauth/accounts.json, else ~/.config/eauth/accounts.json]
    #[arg(long, global = true, value_name = "FILE", env = "EAUTH_ACCOUNTS")]
    accounts: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add an account from an otpauth://totp/ URI or from a QR code image.
    Add(Add),
    /// List the accounts (never their secrets).
    List,
    /// Show an account's current code and how many seconds it stays valid.
    Code(Code),
    /// Remove an account; one registered for push approval is unregistered at the service
    /// first.
    Remove {
        /// `issuer:name`, or a part of it that matches one account only.
        account: String,
        /// Remove it from this computer only, when the service cannot be reached: its device
        /// then stays registered until the portal sets up 2FA again.
        #[arg(long)]
        local: bool,
    },
    /// Approve a pending sign-in with the number its page shows in the browser.
    Approve(Approve),
    /// Deny a pending sign-in: "this wasn't me".
    Deny {
        /// The sign-in's id, or its start as listed; optional when only one is waiting.
        signin: Option<String>,
    },
}

#[derive(Args)]
struct Approve {
    /// The sign-in's id, or its start as listed; optional when only one is waiting.
    signin: Option<String>,
    /// The number shown in the browser, for scripts (else it is asked for on standard input).
    #[arg(long, value_name = "N")]
    number: Option<String>,
    /// Wait for the next sign-in when none is waiting.
    #[arg(long)]
    wait: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["uri", "qr"])))]
struct Add {
    /// The otpauth://totp/ URI; `-` reads it from standard input, which keeps the secret out of
    /// the shell history and the process list.
    uri: Option<String>,
    /// A PNG or JPEG image with the QR code, e.g. a screenshot of the enrollment page.
    #[arg(long, value_name = "IMAGE")]
    qr: Option<PathBuf>,
    /// Also register this device with the eAuthenticator service at URL for push approval
    /// [default: $EAUTH_SERVER, for URIs with client_id and email].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Trust this PEM certificate for the service instead of the system's roots (a dev
    /// server's self-signed <data dir>/tls/cert.pem) [default: $EAUTH_CA_CERT].
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// What the service calls this device.
    #[arg(long, value_name = "NAME", default_value = "eauth")]
    device_name: String,
}

#[derive(Args)]
struct Code {
    /// `issuer:name`, or a part of it that matches one account only; optional when there is one
    /// account (and with --watch, which then shows them all).
    account: Option<String>,
    /// Keep showing the codes, redrawn each second, until Ctrl-C.
    #[arg(long, short)]
    watch: bool,
    /// Show the code at this Unix time instead of now (for tests and comparisons).
    #[arg(
        long,
        hide = true,
        value_name = "UNIX_SECONDS",
        conflicts_with = "watch"
    )]
    at: Option<u64>,
}

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, before anything uses TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Command(error)) => {
            eprintln!("eauth: {error}");
            ExitCode::from(error.exit_code())
        }
        Err(Failure::Io(what, error)) => {
            eprintln!("eauth: {what}: {error}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

enum Failure {
    Command(Error),
    /// Failures of the terminal around the commands, never of the user's input.
    Io(&'static str, String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Command(error)
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let file = accounts_file(cli.accounts)?;
    match cli.command {
        Command::Add(add) => {
            let uri = match (add.uri.as_deref(), &add.qr) {
                (_, Some(image)) => app::read_qr(image)?,
                (Some("-"), None) => app::read_uri(io::stdin().lock())?,
                (Some(uri), None) => uri.to_owned(),
                (None, None) => unreachable!("BUG: clap requires the URI or --qr"),
            };
            let clock = || since_epoch().as_secs();
            let on_wait = |seconds: u64| {
                eprintln!(
                    "eauth: the current code was already used; waiting {seconds}s for the next one"
                );
            };
            let registering = registering(&add, &uri, &clock, &on_wait)?;
            let added = app::add(&file, &uri, registering.as_ref())?;
            report(&added, registering.is_some());
        }
        Command::Approve(Approve {
            signin,
            number,
            wait,
        }) => {
            let number = number.as_deref().map(app::parse_number).transpose()?;
            let waiting = if wait {
                app::wait_for_pending(&file, now)?
            } else {
                app::pending(&file, &now)?
            };
            let chosen = choose(&waiting, signin.as_deref())?;
            loop {
                let typed = match number {
                    Some(number) => number,
                    None => app::parse_number(&ask("Number shown in the browser: ")?)?,
                };
                match app::approve(chosen, typed, now()) {
                    Ok(()) => break,
                    Err(Error::WrongNumber { attempts_left })
                        if number.is_none() && attempts_left > 0 =>
                    {
                        eprintln!("eauth: {}", Error::WrongNumber { attempts_left });
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            println!("approved {}", chosen.signin.application);
        }
        Command::Deny { signin } => {
            let waiting = app::pending(&file, &now)?;
            let chosen = choose(&waiting, signin.as_deref())?;
            app::deny(chosen, now())?;
            println!("denied {}", chosen.signin.application);
        }
        Command::List => {
            let accounts = app::list(&file)?;
            if accounts.is_empty() {
                eprintln!("eauth: no accounts yet: add one with `eauth add URI`");
            } else {
                for line in render::account_table(&accounts) {
                    println!("{line}");
                }
            }
        }
        Command::Code(Code {
            account,
            watch: false,
            at,
        }) => {
            let now = at.unwrap_or_else(|| since_epoch().as_secs());
            println!("{}", app::code(&file, account.as_deref(), now)?);
        }
        Command::Code(Code {
            account,
            watch: true,
            ..
        }) => {
            let accounts = app::watched(&file, account.as_deref())?;
            let (stop, stopped) = mpsc::channel();
            // The handler only asks the view to stop: the view then restores the terminal
            // itself, on the main thread, which a handler interrupting a write could not do.
            ctrlc::set_handler(move || {
                let _ = stop.send(());
            })
            .map_err(|error| Failure::Io("cannot catch Ctrl-C", error.to_string()))?;
            let stdout = io::stdout();
            let terminal = stdout.is_terminal();
            watch::run(
                &accounts,
                &mut stdout.lock(),
                terminal,
                &stopped,
                since_epoch,
            )
            .map_err(|error| Failure::Io("cannot show the codes", error.to_string()))?;
        }
        Command::Remove { account, local } => {
            let removed = app::remove(&file, &account, local, now())?;
            let label = &removed.label;
            match &removed.device {
                Unregistration::NotRegistered => println!("removed {label}"),
                Unregistration::Unregistered { server } => {
                    println!("removed {label} (unregistered from {server})");
                }
                Unregistration::AlreadyGone { server } => {
                    println!("removed {label} ({server} had already forgotten its device)");
                }
                Unregistration::StillRegistered { server } => {
                    println!("removed {label}");
                    eprintln!(
                        "eauth: warning: its device is still registered at {server}: a copy of \
                         the key this file held (a backup) can approve sign-ins until the portal \
                         sets up 2FA again"
                    );
                }
            }
        }
    }
    Ok(())
}

fn accounts_file(flag: Option<PathBuf>) -> Result<AccountsFile, Error> {
    let path = match flag {
        Some(path) => path,
        None => store::default_path(
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        )
        .ok_or(StoreError::NoLocation)?,
    };
    Ok(AccountsFile::new(path))
}

fn report(added: &Added, registered: bool) {
    for warning in &added.warnings {
        eprintln!("eauth: warning: {warning}");
    }
    if registered {
        println!("added {} (registered for push approval)", added.label);
    } else {
        println!("added {}", added.label);
    }
}

/// What `eauth add` needs to register the account: `--server`, or `$EAUTH_SERVER` for a URI
/// that can be registered (with client_id and email); otherwise nothing.
fn registering<'a>(
    add: &Add,
    uri: &str,
    clock: &'a dyn Fn() -> u64,
    on_wait: &'a dyn Fn(u64),
) -> Result<Option<Registering<'a>>, Error> {
    let server = match &add.server {
        Some(server) => server.clone(),
        None => match std::env::var("EAUTH_SERVER").ok().filter(|s| !s.is_empty()) {
            // A default server applies to the portals' URIs only; others are added as usual.
            Some(server) if is_registrable(uri) => server,
            _ => return Ok(None),
        },
    };
    let ca_cert = match add.ca_cert.clone().or_else(|| {
        std::env::var_os("EAUTH_CA_CERT")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }) {
        Some(path) => Some(push::read_ca_cert(&path)?),
        None => None,
    };
    Ok(Some(Registering {
        server: push::parse_server(&server)?,
        ca_cert,
        name: add.device_name.clone(),
        clock,
        on_wait,
    }))
}

fn is_registrable(uri: &str) -> bool {
    eauth_cli::uri::parse(uri)
        .is_ok_and(|p| p.account.client_id().is_some() && p.account.email().is_some())
}

/// Picks the sign-in `query` names, or the only one, or lists them all and asks; shows the
/// one picked.
fn choose<'a>(waiting: &'a [app::Waiting], query: Option<&str>) -> Result<&'a app::Waiting, Error> {
    let now = now();
    let index = match app::select_signin(waiting, query)? {
        Some(index) => index,
        None => {
            for signin in waiting {
                println!("{}", render::signin_line(signin, now));
            }
            let answer = ask("Which sign-in (the start of its id)? ")?;
            app::select_signin(waiting, Some(&answer))?.ok_or(Error::NothingPending)?
        }
    };
    println!("{}", render::signin_line(&waiting[index], now));
    Ok(&waiting[index])
}

/// Asks on standard error, reads a line from standard input.
fn ask(question: &str) -> Result<String, Error> {
    eprint!("{question}");
    let _ = io::stderr().flush();
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        Ok(0) => Err(Error::NoAnswer),
        Ok(_) => Ok(line.trim().to_owned()),
        Err(error) => Err(Error::Stdin(error)),
    }
}

/// Unix seconds now, as the service's signatures want them.
fn now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// The one place `eauth` reads the clock. A clock set before 1970 reads as 1970: the codes
/// are then wrong, as any authenticator's are on a wrong clock.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
