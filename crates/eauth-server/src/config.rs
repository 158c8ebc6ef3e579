//! Settings, in layers: built-in defaults, then an optional TOML file, then `EAUTH_*`
//! environment variables. `eauthd serve` and `eauthd admin` read the same ones.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// Every setting; the README documents each with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database, generated certificate and generated master key live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: `sqlite://<data_dir>/eauth.db`.
    pub database_url: Option<String>,
    /// The base URL browsers and integrators use; default: `https://<listen>`.
    pub public_url: Option<Url>,
    /// 64 hex characters; default: generated into `<data_dir>/master.key` on first start.
    pub master_key: Option<SecretString>,
    /// A file holding the master key (for secret stores that mount files).
    pub master_key_file: Option<PathBuf>,
    /// PEM certificate chain; default: a self-signed one generated into `<data_dir>/tls/`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Lifetime of a sign-in session and its token, in seconds.
    pub session_ttl_secs: u32,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
    #[serde(deserialize_with = "list_of_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Serve plain HTTP, for running behind a TLS-terminating proxy.
    pub insecure_http: bool,
    /// API requests handled at once; beyond it requests are refused with OVERLOADED at once
    /// rather than queued until they time out.
    pub max_concurrent_requests: usize,
    /// Send callbacks to loopback, private and link-local addresses too (see
    /// [`crate::outbound`]): for development, and for portals on the operator's own network.
    pub private_callbacks: bool,
}

/// The defaults, as the base layer.
#[derive(Serialize)]
struct Defaults {
    listen: &'static str,
    data_dir: &'static str,
    session_ttl_secs: u32,
    trusted_proxies: Vec<String>,
    insecure_http: bool,
    max_concurrent_requests: usize,
    private_callbacks: bool,
}

const DEFAULTS: fn() -> Defaults = || Defaults {
    listen: "127.0.0.1:8443",
    data_dir: "./eauth-data",
    session_ttl_secs: 120,
    trusted_proxies: Vec::new(),
    insecure_http: false,
    max_concurrent_requests: 512,
    private_callbacks: false,
};

/// The environment variables read, without their `EAUTH_` prefix.
const ENV_KEYS: [&str; 15] = [
    "listen",
    "data_dir",
    "database_url",
    "public_url",
    "master_key",
    "master_key_file",
    "tls_cert",
    "tls_key",
    "session_ttl_secs",
    "trusted_proxies",
    "insecure_http",
    "max_concurrent_requests",
    "private_callbacks",
    "log",
    "config",
];

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Settings {
    /// Reads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(file).merge(Self::env()))
    }

    /// The built-in defaults alone, ignoring files and the environment.
    pub fn defaults() -> Self {
        Self::from_figment(Self::figment(None)).expect("BUG: the defaults are valid settings")
    }

    fn figment(file: Option<&Path>) -> Figment {
        let figment = Figment::from(Serialized::defaults(DEFAULTS()));
        match file {
            Some(path) => figment.merge(Toml::file_exact(path)),
            None => figment,
        }
    }

    fn env() -> Env {
        // `EAUTH_LOG` (the log filter) and `EAUTH_CONFIG` (the file) are read by the binary;
        // they are listed so that they are not reported as unknown, and dropped here.
        Env::prefixed("EAUTH_")
            .only(&ENV_KEYS)
            .ignore(&["log", "config"])
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Self = figment.extract().map_err(Box::new)?;
        if settings.tls_cert.is_some() != settings.tls_key.is_some() {
            return Err(ConfigError(Box::new(figment::Error::from(
                "tls_cert and tls_key must be given together".to_owned(),
            ))));
        }
        if !(2..=3600).contains(&settings.session_ttl_secs) {
            return Err(ConfigError(Box::new(figment::Error::from(
                "session_ttl_secs must be between 2 and 3600 (the guide's default is 120)"
                    .to_owned(),
            ))));
        }
        Ok(settings)
    }

    /// `EAUTH_*` variables set in the environment that no setting reads: most likely typos.
    pub fn unknown_env_vars() -> Vec<String> {
        std::env::vars()
            .map(|(name, _)| name)
            .filter(|name| {
                name.strip_prefix("EAUTH_").is_some_and(|key| {
                    let key = key.to_ascii_lowercase();
                    // Variables of the test suite and the benchmark are not settings.
                    !ENV_KEYS.contains(&key.as_str())
                        && !key.starts_with("test_")
                        && !key.starts_with("bench_")
                })
            })
            .collect()
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("eauth.db").display()))
    }
}

/// Accepts a TOML list or a comma- or space-separated string (as environment variables are).
fn list_of_nets<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Text(String),
        List(Vec<String>),
    }
    let entries = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::Text(text) => text.split([',', ' ']).map(str::to_owned).collect(),
        OneOrMany::List(list) => list,
    };
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{e:?} is not an IP address or CIDR range"))
                })
        })
        .collect()
}

#[cfg(test)]
// `Jail`'s closures return figment's own large error type.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    fn load(file: Option<&str>) -> Result<Settings, ConfigError> {
        Settings::load(file.map(Path::new))
    }

    #[test]
    fn defaults_need_no_configuration() {
        Jail::expect_with(|_| {
            let settings = load(None).expect("defaults");
            assert_eq!(settings.listen.to_string(), "127.0.0.1:8443");
            assert_eq!(settings.data_dir, PathBuf::from("./eauth-data"));
            assert_eq!(settings.database_url(), "sqlite://./eauth-data/eauth.db");
            assert_eq!(settings.session_ttl_secs, 120);
            assert!(!settings.insecure_http);
            assert!(settings.trusted_proxies.is_empty());
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "eauthd.toml",
                "listen = \"0.0.0.0:9000\"\nsession_ttl_secs = 300\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
            )?;
            jail.set_env("EAUTH_SESSION_TTL_SECS", "60");
            jail.set_env("EAUTH_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32");
            jail.set_env("EAUTH_TEST_DATABASE_URL", "postgres://ignored");
            jail.set_env("EAUTH_CONFIG", "eauthd.toml");
            let settings = load(Some("eauthd.toml")).expect("valid");
            assert_eq!(settings.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(settings.session_ttl_secs, 60);
            assert_eq!(settings.trusted_proxies.len(), 2);
            assert!(Settings::unknown_env_vars().is_empty());
            Ok(())
        });
    }

    #[test]
    fn mistakes_are_reported_not_ignored() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "lisen = \"0.0.0.0:9000\"\n")?;
            assert!(load(Some("typo.toml")).is_err());
            assert!(load(Some("missing.toml")).is_err());
            jail.set_env("EAUTH_LISTN", "0.0.0.0:1");
            assert_eq!(Settings::unknown_env_vars(), vec!["EAUTH_LISTN".to_owned()]);
            jail.set_env("EAUTH_SESSION_TTL_SECS", "0");
            assert!(load(None).is_err());
            jail.set_env("EAUTH_SESSION_TTL_SECS", "120");
            jail.set_env("EAUTH_TLS_CERT", "cert.pem");
            assert!(load(None).is_err());
            jail.set_env("EAUTH_TRUSTED_PROXIES", "not-an-ip");
            assert!(load(None).is_err());
            Ok(())
        });
    }
}
