//! An account's applications (guide, Step 1, 3–5): the list, "Create Application", the
//! credentials shown once, settings, key and secret rotation, activation, deletion, and the
//! integration page with the guide's examples filled in.
//!
//! Every handler of one application starts with [`owned`]: an id that is not one of this
//! account's applications is "not found", whether it exists or not, before anything is read
//! or written.

use askama::Template;
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
    routing::{MethodRouter, get},
};
use eauth_core::{ApiKey, CallbackSecret, ClientId, RedirectUri, console::AuditAction};
use eauth_store::{Application, PageRequest};
use serde::Deserialize;
use url::form_urlencoded;

use super::{
    accounts::Nothing,
    audit,
    chart::{self, Chart},
    session::{Account, Posted},
    views::{AppNav, Chrome, ConsoleError, no_store, notice, page, see_other, time},
};
use crate::{
    client_ip::ClientIp,
    registration::{self, Field, FieldError},
    state::AppState,
};

/// This account's application `id`, or [`ConsoleError::NotFound`].
pub(super) async fn owned(
    state: &AppState,
    account: &Account,
    id: &str,
) -> Result<Application, ConsoleError> {
    let client_id = ClientId::parse(id).map_err(|_| ConsoleError::NotFound)?;
    state
        .store
        .owned_application(client_id, &account.email)
        .await?
        .ok_or(ConsoleError::NotFound)
}

/// The tabs of `app`'s pages, with `tab` open.
pub(super) fn nav(app: &Application, tab: &'static str) -> AppNav {
    AppNav {
        id: app.client_id.to_string(),
        name: app.name.to_string(),
        active: app.active,
        tab,
    }
}

/// `?notice=...` after a redirect.
#[derive(Default, Deserialize)]
pub(super) struct NoticeQuery {
    notice: Option<String>,
}

fn notice_of(query: Result<Query<NoticeQuery>, QueryRejection>) -> Option<&'static str> {
    notice(query.ok().and_then(|Query(q)| q.notice).as_deref())
}

struct AppSummary {
    id: String,
    name: String,
    active: bool,
    created: String,
    addresses: String,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    apps: Vec<AppSummary>,
}

/// `GET /console`: the account's applications.
pub(super) async fn list(
    State(state): State<AppState>,
    account: Account,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let apps = state
        .store
        .applications_of(&account.email)
        .await?
        .iter()
        .map(|app| AppSummary {
            id: app.client_id.to_string(),
            name: app.name.to_string(),
            active: app.active,
            created: time(app.created_at),
            addresses: app.ip_allow_list.entries().collect::<Vec<_>>().join(", "),
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &AppsPage {
            chrome: account.chrome(&state),
            notice: notice_of(query),
            apps,
        },
    ))
}

/// The application form's fields, as typed.
#[derive(Default, Deserialize)]
pub(super) struct AppForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ips: String,
    #[serde(default)]
    callback_url: String,
    #[serde(default)]
    redirect_uris: String,
}

impl AppForm {
    fn of(app: &Application) -> Self {
        Self {
            name: app.name.to_string(),
            ips: app.ip_allow_list.entries().collect::<Vec<_>>().join("\n"),
            callback_url: app.callback_url.to_string(),
            redirect_uris: app
                .redirect_uris
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn parse(&self, state: &AppState) -> Result<registration::Settings, Vec<FieldError>> {
        let ips: Vec<&str> = self.ips.lines().collect();
        let redirect_uris: Vec<&str> = self.redirect_uris.lines().collect();
        registration::Settings::parse(
            &self.name,
            &ips,
            &self.callback_url,
            &redirect_uris,
            state.callbacks.private_allowed(),
        )
    }
}

#[derive(Template)]
#[template(path = "console/app_form.html")]
struct AppFormPage {
    chrome: Chrome,
    nav: Option<AppNav>,
    title: &'static str,
    action: String,
    submit: &'static str,
    form: AppForm,
    errors: Vec<FieldError>,
}

impl AppFormPage {
    /// The message for `field`, if it was refused.
    fn error(&self, field: &str) -> Option<String> {
        let field = match field {
            "name" => Field::Name,
            "ips" => Field::Ips,
            "callback_url" => Field::CallbackUrl,
            _ => Field::RedirectUris,
        };
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| sentence(&e.message))
    }
}

/// "name is empty" → "Name is empty."
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// `GET /console/apps/new`.
pub(super) async fn new_form(State(state): State<AppState>, account: Account) -> Response {
    page(
        StatusCode::OK,
        &AppFormPage {
            chrome: account.chrome(&state),
            nav: None,
            title: "Create Application",
            action: "/console/apps/new".into(),
            submit: "Create Application",
            form: AppForm::default(),
            errors: Vec::new(),
        },
    )
}

/// The page that shows credentials once.
#[derive(Template)]
#[template(path = "console/secrets.html")]
struct SecretsPage {
    chrome: Chrome,
    nav: AppNav,
    /// Just created (the next step is integrating), rather than rotated.
    created: bool,
    title: &'static str,
    intro: &'static str,
    client_id: String,
    api_key: Option<String>,
    callback_secret: Option<String>,
}

/// Credentials shown once, on a page that nothing caches: all of them after creation, or the
/// one that was just rotated.
fn shown_once(
    state: &AppState,
    account: &Account,
    app: &Application,
    (title, intro): (&'static str, &'static str),
    api_key: Option<&ApiKey>,
    callback_secret: Option<&CallbackSecret>,
) -> Response {
    let created = api_key.is_some() && callback_secret.is_some();
    no_store(page(
        StatusCode::OK,
        &SecretsPage {
            chrome: account.chrome(state),
            nav: nav(app, if created { "" } else { "keys" }),
            created,
            title,
            intro,
            client_id: app.client_id.to_string(),
            api_key: api_key.map(|key| key.expose().to_owned()),
            callback_secret: callback_secret.map(|secret| secret.expose().to_owned()),
        },
    ))
}

/// `POST /console/apps/new`: creates the application, or shows the form again with what is
/// wrong next to each field (nothing is saved then).
#[tracing::instrument(name = "console_create_application", level = "debug", skip_all)]
pub(super) async fn create(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Posted { account, form }: Posted<AppForm>,
) -> Result<Response, ConsoleError> {
    let settings = match form.parse(&state) {
        Ok(settings) => settings,
        Err(errors) => {
            let again = AppFormPage {
                chrome: account.chrome(&state),
                nav: None,
                title: "Create Application",
                action: "/console/apps/new".into(),
                submit: "Create Application",
                form,
                errors,
            };
            return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &again));
        }
    };
    let (app, credentials) = registration::new_application(
        settings,
        Some(account.email.clone()),
        &state.vault,
        state.clock.now(),
    );
    state.store.insert_application(&app).await?;
    audit(
        &state,
        &account.email,
        AuditAction::ApplicationCreated,
        Some(&app),
        None,
        source,
    )
    .await?;
    tracing::info!(client_id = %app.client_id, "application created in the console");
    Ok(shown_once(
        &state,
        &account,
        &app,
        (
            "Application created",
            "Your application is ready. Use the client ID and API key to call the API, and the \
             callback secret to check the signature of the callbacks you receive.",
        ),
        Some(&credentials.api_key),
        Some(&credentials.callback_secret),
    ))
}

struct Outcome {
    status: &'static str,
    label: &'static str,
    class: &'static str,
    count: u64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    nav: AppNav,
    notice: Option<&'static str>,
    client_id: String,
    created: String,
    callback_url: String,
    addresses: Vec<String>,
    redirect_uris: Vec<String>,
    enrolled: u64,
    last_day: Vec<Outcome>,
    hourly: Chart,
    daily: Chart,
}

/// `GET /console/apps/{id}`: the application at a glance.
pub(super) async fn overview(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let now = state.clock.now();
    let enrolled = state
        .store
        .enrolled_users(
            app.client_id,
            None,
            PageRequest {
                offset: 0,
                limit: 0,
            },
        )
        .await?
        .total;
    let (hourly_since, hourly) = chart::window(now, chart::HOUR, 24);
    let hourly_counts = state
        .store
        .outcome_counts(app.client_id, hourly_since, chart::HOUR)
        .await?;
    let (daily_since, daily) = chart::window(now, chart::DAY, 30);
    let daily_counts = state
        .store
        .outcome_counts(app.client_id, daily_since, chart::DAY)
        .await?;
    let last_day = chart::OUTCOMES
        .iter()
        .map(|&status| Outcome {
            status: status.as_str(),
            label: chart::label(status),
            class: chart::class(status),
            count: hourly_counts
                .iter()
                .filter(|c| c.status == status)
                .map(|c| c.count)
                .sum(),
        })
        .collect();
    let overview = OverviewPage {
        chrome: account.chrome(&state),
        nav: nav(&app, ""),
        notice: notice_of(query),
        client_id: app.client_id.to_string(),
        created: time(app.created_at),
        callback_url: app.callback_url.to_string(),
        addresses: app.ip_allow_list.entries().collect(),
        redirect_uris: app.redirect_uris.iter().map(ToString::to_string).collect(),
        enrolled,
        last_day,
        hourly: Chart::build(
            "Sign-ins per hour, last 24 hours (UTC)",
            &hourly_counts,
            hourly_since,
            hourly,
            chart::HOUR,
        ),
        daily: Chart::build(
            "Sign-ins per day, last 30 days (UTC)",
            &daily_counts,
            daily_since,
            daily,
            chart::DAY,
        ),
    };
    Ok(page(StatusCode::OK, &overview))
}

/// `GET /console/apps/{id}/settings`.
pub(super) async fn settings_form(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    Ok(page(
        StatusCode::OK,
        &settings_page(&state, &account, &app, AppForm::of(&app), Vec::new()),
    ))
}

fn settings_page(
    state: &AppState,
    account: &Account,
    app: &Application,
    form: AppForm,
    errors: Vec<FieldError>,
) -> AppFormPage {
    AppFormPage {
        chrome: account.chrome(state),
        nav: Some(nav(app, "settings")),
        title: "Settings",
        action: format!("/console/apps/{}/settings", app.client_id),
        submit: "Save settings",
        form,
        errors,
    }
}

/// `POST /console/apps/{id}/settings`.
pub(super) async fn save_settings(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, form }: Posted<AppForm>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let settings = match form.parse(&state) {
        Ok(settings) => settings,
        Err(errors) => {
            let again = settings_page(&state, &account, &app, form, errors);
            return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &again));
        }
    };
    let before = registration::Settings::of(&app);
    let mut changed = Vec::new();
    if before.name != settings.name {
        changed.push("name");
    }
    if before.ip_allow_list != settings.ip_allow_list {
        changed.push("IP addresses");
    }
    if before.callback_url != settings.callback_url {
        changed.push("callback URL");
    }
    if before.redirect_uris != settings.redirect_uris {
        changed.push("redirect URIs");
    }
    let updated = Application {
        name: settings.name,
        ip_allow_list: settings.ip_allow_list,
        callback_url: settings.callback_url,
        redirect_uris: settings.redirect_uris,
        ..app
    };
    if !changed.is_empty() {
        if !state
            .store
            .update_application_settings(&updated, state.clock.now())
            .await?
        {
            return Err(ConsoleError::NotFound);
        }
        let detail = format!("Changed: {}", changed.join(", "));
        audit(
            &state,
            &account.email,
            AuditAction::SettingsChanged,
            Some(&updated),
            Some(&detail),
            source,
        )
        .await?;
    }
    Ok(see_other(&format!(
        "/console/apps/{}?notice=saved",
        updated.client_id
    )))
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    chrome: Chrome,
    nav: AppNav,
    notice: Option<&'static str>,
    client_id: String,
}

/// `GET /console/apps/{id}/keys`: credentials, activation and deletion.
pub(super) async fn keys(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
    query: Result<Query<NoticeQuery>, QueryRejection>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    Ok(page(
        StatusCode::OK,
        &KeysPage {
            chrome: account.chrome(&state),
            nav: nav(&app, "keys"),
            notice: notice_of(query),
            client_id: app.client_id.to_string(),
        },
    ))
}

/// "Are you sure?" before something that cannot be undone.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub(super) struct ConfirmPage {
    pub(super) chrome: Chrome,
    pub(super) nav: AppNav,
    pub(super) title: &'static str,
    pub(super) message: String,
    /// Where the form posts.
    pub(super) action: String,
    pub(super) button: &'static str,
    /// Where "Cancel" leads.
    pub(super) cancel: String,
    /// The name to type before deleting.
    pub(super) type_name: Option<String>,
    pub(super) error: Option<&'static str>,
}

fn confirm_page(
    state: &AppState,
    account: &Account,
    app: &Application,
    what: Confirm,
    error: Option<&'static str>,
) -> ConfirmPage {
    let (path, title, message, button) = match what {
        Confirm::RotateApiKey => (
            "rotate-api-key",
            "Rotate the API key?",
            "A new API key is made and shown once. The current key stops working at once: calls \
             that still use it are refused with INVALID_API_KEY until your servers use the new one.",
            "Rotate the API key",
        ),
        Confirm::RotateCallbackSecret => (
            "rotate-callback-secret",
            "Rotate the callback secret?",
            "A new callback secret is made and shown once. From now on callbacks are signed with \
             it: your backend must check signatures with the new secret.",
            "Rotate the callback secret",
        ),
        Confirm::Delete => (
            "delete",
            "Delete this application?",
            "The application, its API key, every enrolled user, sign-in and callback are deleted \
             for good. The API refuses its key from now on. This cannot be undone.",
            "Delete the application",
        ),
    };
    ConfirmPage {
        chrome: account.chrome(state),
        nav: nav(app, "keys"),
        title,
        message: message.to_owned(),
        action: format!("/console/apps/{}/{path}", app.client_id),
        button,
        cancel: format!("/console/apps/{}/keys", app.client_id),
        type_name: matches!(what, Confirm::Delete).then(|| app.name.to_string()),
        error,
    }
}

/// What a confirmation page asks about.
#[derive(Clone, Copy)]
pub(super) enum Confirm {
    RotateApiKey,
    RotateCallbackSecret,
    Delete,
}

/// `GET` of a confirmation page: rotating the API key, rotating the callback secret, or
/// deleting (then with the name to type). Only the `POST` that follows acts.
pub(super) fn confirm(what: Confirm) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, account: Account, Path(id): Path<String>| async move {
            let app = owned(&state, &account, &id).await?;
            Ok::<_, ConsoleError>(page(
                StatusCode::OK,
                &confirm_page(&state, &account, &app, what, None),
            ))
        },
    )
}

/// `POST /console/apps/{id}/rotate-api-key`: a new key, shown once; the old one is refused
/// from this commit on.
pub(super) async fn rotate_api_key(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, .. }: Posted<Nothing>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let api_key = ApiKey::generate();
    if !state
        .store
        .replace_api_key(app.client_id, &api_key.hash(), state.clock.now())
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    audit(
        &state,
        &account.email,
        AuditAction::ApiKeyRotated,
        Some(&app),
        None,
        source,
    )
    .await?;
    tracing::info!(client_id = %app.client_id, "API key rotated in the console");
    Ok(shown_once(
        &state,
        &account,
        &app,
        (
            "New API key",
            "The previous key no longer works. Put this one in your servers' configuration now.",
        ),
        Some(&api_key),
        None,
    ))
}

/// `POST /console/apps/{id}/rotate-callback-secret`: a new signing secret, shown once.
pub(super) async fn rotate_callback_secret(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, .. }: Posted<Nothing>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let secret = CallbackSecret::generate();
    let sealed = state.vault.seal_callback_secret(app.client_id, &secret);
    if !state
        .store
        .replace_callback_secret(app.client_id, &sealed, state.clock.now())
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    audit(
        &state,
        &account.email,
        AuditAction::CallbackSecretRotated,
        Some(&app),
        None,
        source,
    )
    .await?;
    Ok(shown_once(
        &state,
        &account,
        &app,
        (
            "New callback secret",
            "Callbacks are signed with this secret from now on. Update your backend's signature check now.",
        ),
        None,
        Some(&secret),
    ))
}

#[derive(Deserialize)]
pub(super) struct ActivationForm {
    #[serde(default)]
    active: String,
}

/// `POST /console/apps/{id}/activation`: `active=true|false`.
pub(super) async fn set_activation(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, form }: Posted<ActivationForm>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(ConsoleError::BadRequest),
    };
    if !state
        .store
        .set_application_active(app.client_id, active, state.clock.now())
        .await?
    {
        return Err(ConsoleError::NotFound);
    }
    let (action, notice) = if active {
        (AuditAction::Activated, "activated")
    } else {
        (AuditAction::Deactivated, "deactivated")
    };
    if app.active != active {
        audit(&state, &account.email, action, Some(&app), None, source).await?;
    }
    Ok(see_other(&format!(
        "/console/apps/{}/keys?notice={notice}",
        app.client_id
    )))
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    name: String,
}

/// `POST /console/apps/{id}/delete`: only with the application's name typed.
pub(super) async fn delete(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    Path(id): Path<String>,
    Posted { account, form }: Posted<DeleteForm>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    if form.name.trim() != app.name.as_str() {
        let again = confirm_page(
            &state,
            &account,
            &app,
            Confirm::Delete,
            Some("Type the application's name exactly as shown to delete it."),
        );
        return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &again));
    }
    if !state.store.delete_application(app.client_id).await? {
        return Err(ConsoleError::NotFound);
    }
    audit(
        &state,
        &account.email,
        AuditAction::ApplicationDeleted,
        Some(&app),
        None,
        source,
    )
    .await?;
    tracing::info!(client_id = %app.client_id, "application deleted in the console");
    Ok(see_other("/console?notice=deleted"))
}

/// A ready-to-copy example.
struct Snippet {
    id: &'static str,
    title: &'static str,
    text: &'static str,
    code: String,
    /// One long line (a URL), wrapped rather than scrolled.
    wrap: bool,
}

#[derive(Template)]
#[template(path = "console/integration.html")]
struct IntegrationPage {
    chrome: Chrome,
    nav: AppNav,
    client_id: String,
    public_url: String,
    snippets: Vec<Snippet>,
}

/// `GET /console/apps/{id}/integration`: the guide's steps with this application's values.
pub(super) async fn integration(
    State(state): State<AppState>,
    account: Account,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let app = owned(&state, &account, &id).await?;
    let public_url = state.public_url.as_str().trim_end_matches('/').to_owned();
    Ok(page(
        StatusCode::OK,
        &IntegrationPage {
            chrome: account.chrome(&state),
            nav: nav(&app, "integration"),
            client_id: app.client_id.to_string(),
            snippets: snippets(&app, &public_url),
            public_url,
        },
    ))
}

/// The guide's examples (Steps 2–5 and its API reference), filled in. The API key is never
/// shown again, so the commands read it from `$EAUTH_API_KEY`.
fn snippets(app: &Application, public_url: &str) -> Vec<Snippet> {
    let client_id = app.client_id;
    let redirect_uri = app
        .redirect_uris
        .first()
        .map_or_else(String::new, RedirectUri::to_string);
    let encode =
        |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let issuer = encode(app.name.as_str()).replace('+', "%20");
    vec![
        Snippet {
            id: "enable",
            title: "Enable 2FA for a user (mfa/toggle)",
            text: "After the user scanned the QR code and typed a correct code, your backend tells the \
                   service (guide, Step 2.5).",
            code: format!(
                r#"curl --location '{public_url}/authen-api/api/v1/mfa/toggle' \
  --header "X-API-Key: $EAUTH_API_KEY" \
  --header 'Content-Type: application/json' \
  --data-raw '{{
    "email": "user@example.com",
    "client_id": "{client_id}",
    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "action": "ENABLE",
    "type": "TOTP",
    "algorithm": "SHA1",
    "digits": 6,
    "period": 30
  }}'"#
            ),
            wrap: false,
        },
        Snippet {
            id: "disable",
            title: "Disable 2FA for a user",
            text: "When the user turns two-factor authentication off in your application.",
            code: format!(
                r#"curl --location '{public_url}/authen-api/api/v1/mfa/toggle' \
  --header "X-API-Key: $EAUTH_API_KEY" \
  --header 'Content-Type: application/json' \
  --data-raw '{{ "email": "user@example.com", "client_id": "{client_id}", "action": "DISABLE" }}'"#
            ),
            wrap: false,
        },
        Snippet {
            id: "qr",
            title: "The QR code's content",
            text: "Show this URI as a QR code for the eAuthenticator app (guide, Step 2.2), with the \
                   user's email and the secret you generated for them.",
            code: format!(
                "otpauth://totp/{issuer}:USER_EMAIL?secret=SECRET&issuer={issuer}&algorithm=SHA1&digits=6&client_id={client_id}&email=USER_EMAIL"
            ),
            wrap: true,
        },
        Snippet {
            id: "session-token",
            title: "Create a session after the password step (session-token)",
            text: "Your backend asks for a session token once the user's password is right (guide, \
                   Step 3), and keeps it for at least 2 minutes.",
            code: format!(
                r#"curl --location '{public_url}/authen-api/api/v1/session-token' \
  --header "X-API-Key: $EAUTH_API_KEY" \
  --header 'Content-Type: application/json' \
  --data '{{ "email": "user@example.com", "client_id": "{client_id}" }}'"#
            ),
            wrap: false,
        },
        Snippet {
            id: "redirect",
            title: "Send the user to the sign-in page (redirect)",
            text: "Replace SESSION_TOKEN with the token from session-token (guide, Step 4, option 1). \
                   redirect_uri must be one of this application's redirect URIs, exactly.",
            code: format!(
                "{public_url}/start-authentication?signin_method=redirect&session_token=SESSION_TOKEN&redirect_uri={}",
                encode(&redirect_uri)
            ),
            wrap: true,
        },
        Snippet {
            id: "popup",
            title: "Or open it in a popup (eauth.js)",
            text: "In your sign-in page's front end (guide, Step 4, option 2). The helper checks the \
                   popup's state and origin for you.",
            code: format!(
                r#"<script src="{public_url}/sdk/eauth.js"></script>
<script>
  // sessionToken: from your backend, which called session-token after the password step.
  EAuth.signInWithPopup({{ sessionToken, redirectUri: "{redirect_uri}" }})
    .then(({{ sessionToken }}) => fetch("/api/finish-sign-in", {{ method: "POST", body: sessionToken }}))
    .catch((error) => {{            // error.code: REJECT, TIMEOUT, INTERNAL_SERVER_ERROR,
      alert("Authentication failed. Please try again.");  // POPUP_BLOCKED or POPUP_CLOSED
      window.location.href = "/sign-in";
    }});
</script>"#
            ),
            wrap: false,
        },
        Snippet {
            id: "callback",
            title: "Check the callback's signature (Node.js)",
            text: "Every result is sent to your callback URL with a signature made with the callback \
                   secret. Check it before you believe result=true.",
            code: format!(
                r#"// GET {callback}?result=true|false&session_token=T&timestamp=UNIX&signature=HEX
const crypto = require("node:crypto");
function isGenuine(q, CALLBACK_SECRET) {{
  const expected = crypto.createHmac("sha256", CALLBACK_SECRET)
    .update(`${{q.timestamp}}.${{q.result}}.${{q.session_token}}`).digest();
  const given = Buffer.from(String(q.signature), "hex");
  return given.length === expected.length && crypto.timingSafeEqual(expected, given)
    && Math.abs(Date.now() / 1000 - Number(q.timestamp)) < 300;
}}"#,
                callback = app.callback_url
            ),
            wrap: false,
        },
    ]
}
