//! `eauthd`: the eAuthenticator service. `serve` (the default) runs it; `admin` manages
//! applications on the same settings and database. Everything else lives in `eauth-server`.

mod demo;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use eauth_server::{
    RunningServer, Settings,
    admin::{Admin, AdminError, ApplicationInput},
};
use serde_json::json;

/// glibc's malloc took a sixth of the service's CPU under load, a good part of it merging freed
/// chunks back together (perf); mimalloc's per-thread pages suit a server's many small,
/// short-lived allocations. Not its `secure` mode (guard pages, encoded free lists): 12–16 %
/// more instructions per request, as many as glibc's, to harden a heap that only C code
/// (SQLite's, chiefly) could corrupt.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "eauthd",
    version,
    about = "The eAuthenticator two-factor authentication service"
)]
struct Cli {
    /// A TOML settings file; EAUTH_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "EAUTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve {
        /// Also run the example portal on http://localhost:3000, registered with the service
        /// (and callbacks to this machine allowed: `private_callbacks`).
        #[arg(long)]
        demo: bool,
    },
    /// Manage applications.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Register an active application and print its credentials.
    CreateApplication(CreateApplication),
    /// List the registered applications.
    ListApplications {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Activate (true) or deactivate (false) an application.
    SetActive {
        /// The application's client_id.
        client_id: String,
        /// true or false.
        #[arg(action = clap::ArgAction::Set)]
        active: bool,
    },
    /// Give an application a new API key; the old one stops working at once.
    RotateApiKey {
        /// The application's client_id.
        client_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct CreateApplication {
    /// The application's name, shown to users.
    #[arg(long)]
    name: String,
    /// A server address or CIDR range the application calls from (repeatable).
    #[arg(long = "ip", value_name = "CIDR", required = true)]
    ips: Vec<String>,
    /// Where sign-in results are delivered (https; http only for loopback hosts).
    #[arg(long, value_name = "URL")]
    callback_url: String,
    /// A URL the sign-in page may send browsers back to (repeatable).
    #[arg(long = "redirect-uri", value_name = "URL", required = true)]
    redirect_uris: Vec<String>,
    /// The owner's email.
    #[arg(long, value_name = "EMAIL")]
    owner: Option<String>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Exit code for bad arguments, as clap uses for its own.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve { .. }));
    init_tracing(if serving { "info" } else { "warn" });
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("BUG: no other TLS crypto provider is installed before main");
    for name in Settings::unknown_env_vars() {
        tracing::warn!("ignoring unknown environment variable {name}");
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("eauthd: {error}");
            return ExitCode::from(USAGE);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the async runtime");
    let outcome = runtime.block_on(async {
        match cli.command {
            None => serve(&settings, false).await.map_err(Failure::Fatal),
            Some(Command::Serve { demo }) => serve(&settings, demo).await.map_err(Failure::Fatal),
            Some(Command::Admin(command)) => admin(&settings, command).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("eauthd: {message}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Fatal(error)) => {
            eprintln!("eauthd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EAUTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal only: a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

enum Failure {
    Usage(String),
    Fatal(anyhow::Error),
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::InvalidArgument(_) | AdminError::UnknownApplication(_) => {
                Self::Usage(error.to_string())
            }
            AdminError::Store(_) => Self::Fatal(error.into()),
        }
    }
}

async fn serve(settings: &Settings, demo: bool) -> anyhow::Result<()> {
    // The demo's portal, on this machine, receives the callbacks.
    let settings = &Settings {
        private_callbacks: settings.private_callbacks || demo,
        ..settings.clone()
    };
    let server = RunningServer::start(settings).await?;
    let service = server.public_url.as_str().trim_end_matches('/').to_owned();
    println!(
        "eauthd serving {service} (data in {}, database {})",
        settings.data_dir.display(),
        server.database_url
    );
    let portal = if demo {
        let portal = demo::start(settings, &server).await?;
        println!("{}", demo::instructions(&service));
        Some(portal)
    } else {
        None
    };
    let served = server.run_until_signal().await;
    if let Some(portal) = portal {
        portal.stop();
    }
    served
}

async fn admin(settings: &Settings, command: AdminCommand) -> Result<(), Failure> {
    let admin = Admin::open(settings).await.map_err(Failure::Fatal)?;
    let result = run_admin(&admin, command).await;
    admin.close().await;
    result
}

async fn run_admin(admin: &Admin, command: AdminCommand) -> Result<(), Failure> {
    match command {
        AdminCommand::CreateApplication(args) => {
            let input = ApplicationInput {
                name: args.name,
                ips: args.ips,
                callback_url: args.callback_url,
                redirect_uris: args.redirect_uris,
                owner: args.owner,
            };
            let created = admin.create_application(&input).await?;
            if args.json {
                println!(
                    "{}",
                    json!({
                        "client_id": created.client_id.to_string(),
                        "api_key": created.api_key.expose(),
                        "callback_secret": created.callback_secret.expose(),
                    })
                );
            } else {
                println!("client_id:       {}", created.client_id);
                println!("api_key:         {}", created.api_key.expose());
                println!("callback_secret: {}", created.callback_secret.expose());
                println!("Keep the API key and callback secret safe: they are not shown again.");
            }
        }
        AdminCommand::ListApplications { json } => {
            let applications = admin.list_applications().await?;
            if json {
                let list: Vec<_> = applications
                    .iter()
                    .map(|app| {
                        json!({
                            "client_id": app.client_id.to_string(),
                            "name": app.name.as_str(),
                            "active": app.active,
                            "ips": app.ip_allow_list.entries().collect::<Vec<_>>(),
                            "callback_url": app.callback_url.to_string(),
                            "redirect_uris": app.redirect_uris.iter().map(ToString::to_string).collect::<Vec<_>>(),
                            "owner": app.owner.as_ref().map(ToString::to_string),
                            "created_at": app.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if applications.is_empty() {
                println!("No applications yet: create one with `eauthd admin create-application`.");
            } else {
                for app in &applications {
                    let status = if app.active { "active" } else { "inactive" };
                    println!("{}  {:8}  {}", app.client_id, status, app.name);
                }
            }
        }
        AdminCommand::SetActive { client_id, active } => {
            admin.set_active(&client_id, active).await?;
            println!(
                "{client_id} is now {}",
                if active { "active" } else { "inactive" }
            );
        }
        AdminCommand::RotateApiKey { client_id, json } => {
            let key = admin.rotate_api_key(&client_id).await?;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": client_id.trim(), "api_key": key.expose() })
                );
            } else {
                println!("api_key: {}", key.expose());
                println!("The previous key no longer works.");
            }
        }
    }
    Ok(())
}
