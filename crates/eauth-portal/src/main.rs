//! `eauth-portal`: the example portal on its own, pointed at an eAuthenticator service by
//! `PORTAL_*` settings. (`eauthd serve --demo` starts it next to the service, configured.)

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use eauth_portal::{PortalConfig, RunningPortal};

#[derive(Parser)]
#[command(
    name = "eauth-portal",
    about = "An example portal protected by eAuthenticator"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PORTAL_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The URL browsers use for the portal.
    #[arg(
        long,
        env = "PORTAL_PUBLIC_URL",
        default_value = "http://localhost:3000"
    )]
    public_url: url::Url,
    /// Where the portal keeps its SQLite file and key.
    #[arg(long, env = "PORTAL_DATA_DIR", default_value = "./portal-data")]
    data_dir: PathBuf,
    /// The eAuthenticator service's base URL.
    #[arg(
        long,
        env = "PORTAL_EAUTH_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    eauth_url: String,
    /// The application's client_id.
    #[arg(long, env = "PORTAL_CLIENT_ID")]
    client_id: String,
    /// The application's API key.
    #[arg(long, env = "PORTAL_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The application's callback secret.
    #[arg(long, env = "PORTAL_CALLBACK_SECRET", hide_env_values = true)]
    callback_secret: String,
    /// A PEM certificate to trust for the service (its self-signed development certificate).
    #[arg(long, env = "PORTAL_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let root_certificates_pem = match &args.ca_cert {
        Some(path) => vec![std::fs::read(path)?],
        None => Vec::new(),
    };
    let config = PortalConfig {
        listen: args.listen,
        public_url: args.public_url.clone(),
        data_dir: args.data_dir,
        name: "Demo Portal".into(),
        eauth: eauth_sdk::Config {
            base_url: args.eauth_url,
            client_id: args.client_id,
            api_key: args.api_key.into(),
            callback_secret: args.callback_secret.into(),
            root_certificates_pem,
            ..eauth_sdk::Config::default()
        },
    };
    let _portal = RunningPortal::start(config).await?;
    println!("eauth-portal serving {}", args.public_url);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
