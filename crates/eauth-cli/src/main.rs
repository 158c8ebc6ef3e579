//! `eauth`: the command-line authenticator. Parses arguments, reads the clock, installs the
//! Ctrl-C handler and prints; the work is done by the `eauth_cli` library.

use std::{
    io::{self, IsTerminal},
    path::PathBuf,
    process::ExitCode,
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::{ArgGroup, Args, Parser, Subcommand};
use eauth_cli::{
    app::{self, Added, EXIT_FAILURE, Error},
    render,
    store::{self, AccountsFile, StoreError},
    watch,
};

#[derive(Parser)]
#[command(
    name = "eauth",
    version,
    about = "A command-line authenticator: TOTP codes for otpauth:// accounts",
    after_help = "Exit codes: 0 done, 1 the accounts file cannot be used, 2 bad input (nothing was changed)."
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
    /// Remove an account.
    Remove {
        /// `issuer:name`, or a part of it that matches one account only.
        account: String,
    },
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
        Command::Add(Add { uri, qr }) => {
            let added = match (uri.as_deref(), qr) {
                (_, Some(image)) => app::add_from_qr(&file, &image)?,
                (Some("-"), None) => app::add(&file, &app::read_uri(io::stdin().lock())?)?,
                (Some(uri), None) => app::add(&file, uri)?,
                (None, None) => unreachable!("BUG: clap requires the URI or --qr"),
            };
            report(&added);
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
        Command::Remove { account } => {
            println!("removed {}", app::remove(&file, &account)?);
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

fn report(added: &Added) {
    for warning in &added.warnings {
        eprintln!("eauth: warning: {warning}");
    }
    println!("added {}", added.label);
}

/// The one place `eauth` reads the clock. A clock set before 1970 reads as 1970: the codes
/// are then wrong, as any authenticator's are on a wrong clock.
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
