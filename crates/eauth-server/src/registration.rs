//! What registering an application takes, shared by `eauthd admin` and the Domain Console:
//! the settings as typed, checked field by field, and the credentials a new application gets.

use eauth_core::{
    ApiKey, ApplicationName, CallbackSecret, CallbackUrl, ClientId, Email, IpAllowList,
    RedirectUri, Vault,
};
use eauth_store::Application;

/// A setting of an application, as the command line and the console's form name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The name shown to users.
    Name,
    /// The server addresses.
    Ips,
    /// The callback URL.
    CallbackUrl,
    /// The redirect URIs.
    RedirectUris,
}

impl Field {
    /// The `eauthd admin` option that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Name => "--name",
            Self::Ips => "--ip",
            Self::CallbackUrl => "--callback-url",
            Self::RedirectUris => "--redirect-uri",
        }
    }
}

/// Why one field was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Which field.
    pub field: Field,
    /// What is wrong with it, for the person who typed it.
    pub message: String,
}

/// An application's settings, each field parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Shown to users.
    pub name: ApplicationName,
    /// Addresses its backend calls from.
    pub ip_allow_list: IpAllowList,
    /// Where results are delivered.
    pub callback_url: CallbackUrl,
    /// Where the sign-in page may send browsers back to.
    pub redirect_uris: Vec<RedirectUri>,
}

impl Settings {
    /// Parses every field, and reports every field that is wrong (not only the first), so a
    /// form can show each message next to its field. Blank entries in the lists are skipped.
    /// Unless `private_callbacks` (the service's setting), a callback URL whose host is plainly
    /// not public (an address, `localhost`) is refused here rather than at every delivery.
    pub fn parse<S: AsRef<str>>(
        name: &str,
        ips: &[S],
        callback_url: &str,
        redirect_uris: &[S],
        private_callbacks: bool,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = check(&mut errors, Field::Name, ApplicationName::parse(name));
        let ip_allow_list = check(
            &mut errors,
            Field::Ips,
            IpAllowList::parse(ips.iter().map(AsRef::as_ref)),
        );
        let callback_url = check(
            &mut errors,
            Field::CallbackUrl,
            CallbackUrl::parse(callback_url)
                .map_err(|error| error.to_string())
                .and_then(|url| {
                    if private_callbacks || !eauth_core::address::is_plainly_private(url.as_url()) {
                        return Ok(url);
                    }
                    Err(format!(
                        "{:?} is not a public address, and this service calls only public \
                         addresses (its operator allows private networks with private_callbacks)",
                        url.as_url().host_str().unwrap_or_default()
                    ))
                }),
        );
        let redirect_uris = check(
            &mut errors,
            Field::RedirectUris,
            parse_redirect_uris(redirect_uris),
        );
        match (name, ip_allow_list, callback_url, redirect_uris) {
            (Some(name), Some(ip_allow_list), Some(callback_url), Some(redirect_uris)) => {
                Ok(Self {
                    name,
                    ip_allow_list,
                    callback_url,
                    redirect_uris,
                })
            }
            _ => Err(errors),
        }
    }

    /// The settings of an existing application.
    pub fn of(application: &Application) -> Self {
        Self {
            name: application.name.clone(),
            ip_allow_list: application.ip_allow_list.clone(),
            callback_url: application.callback_url.clone(),
            redirect_uris: application.redirect_uris.clone(),
        }
    }
}

/// The parsed value, or `None` with the reason noted against `field`.
fn check<T, E: ToString>(
    errors: &mut Vec<FieldError>,
    field: Field,
    result: Result<T, E>,
) -> Option<T> {
    result
        .map_err(|error| {
            errors.push(FieldError {
                field,
                message: error.to_string(),
            });
        })
        .ok()
}

fn parse_redirect_uris<S: AsRef<str>>(raw: &[S]) -> Result<Vec<RedirectUri>, String> {
    let mut uris = Vec::new();
    for entry in raw
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
    {
        let uri = RedirectUri::parse(entry).map_err(|e| e.to_string())?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    if uris.is_empty() {
        return Err("at least one redirect URI is required".to_owned());
    }
    Ok(uris)
}

/// The credentials of a new application, shown once.
#[derive(Debug)]
pub struct Credentials {
    /// The application's id.
    pub client_id: ClientId,
    /// Its API key.
    pub api_key: ApiKey,
    /// Its callback signing secret.
    pub callback_secret: CallbackSecret,
}

/// A new, active application with these settings and fresh credentials: what to store (the
/// key hashed, the secret sealed) and what to show once.
pub fn new_application(
    settings: Settings,
    owner: Option<Email>,
    vault: &Vault,
    now: i64,
) -> (Application, Credentials) {
    let client_id = ClientId::generate();
    let api_key = ApiKey::generate();
    let callback_secret = CallbackSecret::generate();
    let application = Application {
        client_id,
        name: settings.name,
        owner,
        ip_allow_list: settings.ip_allow_list,
        redirect_uris: settings.redirect_uris,
        callback_url: settings.callback_url,
        api_key_hash: api_key.hash(),
        sealed_callback_secret: vault.seal_callback_secret(client_id, &callback_secret),
        active: true,
        created_at: now,
        revision: Default::default(),
    };
    (
        application,
        Credentials {
            client_id,
            api_key,
            callback_secret,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_reported_with_its_reason() {
        let errors = Settings::parse(
            " ",
            &["10.0.0.1", "10.0.0.0/33"],
            "http://portal.example.com/cb",
            &["", "  "],
            false,
        )
        .expect_err("all four are wrong");
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                Field::Name,
                Field::Ips,
                Field::CallbackUrl,
                Field::RedirectUris
            ]
        );
        assert_eq!(errors[0].message, "name is empty");
        assert!(errors[1].message.contains("10.0.0.0/33"));
        assert!(errors[2].message.contains("https"));
        assert_eq!(errors[3].message, "at least one redirect URI is required");
    }

    #[test]
    fn a_callback_url_on_a_private_host_is_refused_unless_the_service_allows_them() {
        let parse = |callback_url: &str, private_callbacks| {
            Settings::parse(
                "Portal",
                &["203.0.113.7"],
                callback_url,
                &["https://portal.example.com/cb"],
                private_callbacks,
            )
        };
        for url in [
            "http://127.0.0.1:3000/cb",
            "http://localhost:3000/cb",
            "https://app.localhost/cb",
            "https://10.0.0.5/cb",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00::1]/cb",
            "https://[::ffff:192.168.0.1]/cb",
        ] {
            let errors = parse(url, false).expect_err(url);
            assert_eq!(errors.len(), 1, "{url}");
            assert_eq!(errors[0].field, Field::CallbackUrl);
            assert!(
                errors[0].message.contains("private_callbacks"),
                "{url}: {}",
                errors[0].message
            );
            parse(url, true).unwrap_or_else(|errors| panic!("{url} when allowed: {errors:?}"));
        }
        // A name is checked at each delivery, where it resolves.
        parse("https://portal.example.com/eauth", false).expect("a name");
        parse("https://93.184.215.14/eauth", false).expect("a public address");
    }

    #[test]
    fn good_settings_parse_with_blank_lines_and_duplicates_dropped() {
        let settings = Settings::parse(
            "Portal",
            &["", "203.0.113.7", "2001:db8::/32", ""],
            "https://portal.example.com/eauth",
            &[
                "https://portal.example.com/cb",
                "",
                "https://portal.example.com/cb",
            ],
            false,
        )
        .expect("valid");
        assert_eq!(settings.name.as_str(), "Portal");
        assert_eq!(
            settings.ip_allow_list.entries().collect::<Vec<_>>(),
            ["203.0.113.7/32", "2001:db8::/32"]
        );
        assert_eq!(settings.redirect_uris.len(), 1);
    }

    #[test]
    fn a_new_application_is_active_with_hashed_key_and_sealed_secret() {
        let vault = Vault::new(&eauth_core::MasterKey::generate().0);
        let settings = Settings::parse(
            "Portal",
            &["127.0.0.1"],
            "https://portal.example.com/eauth",
            &["https://portal.example.com/cb"],
            false,
        )
        .expect("valid");
        let owner = Email::parse("jane@example.com").expect("email");
        let (app, credentials) = new_application(settings, Some(owner.clone()), &vault, 42);
        assert!(app.active);
        assert_eq!((app.owner, app.created_at), (Some(owner), 42));
        assert_eq!(app.client_id, credentials.client_id);
        assert!(app.api_key_hash.matches(credentials.api_key.expose()));
        let opened = vault
            .open_callback_secret(app.client_id, &app.sealed_callback_secret)
            .expect("opens");
        assert_eq!(opened.expose(), credentials.callback_secret.expose());
    }
}
