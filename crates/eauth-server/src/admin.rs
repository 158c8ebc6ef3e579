//! Operator commands (`eauthd admin ...`): register applications and manage their keys,
//! on the same settings and database as the running service.

use eauth_core::{ApiKey, ClientId, Email, Vault};
use eauth_store::{Application, Store, StoreError};

pub use crate::registration::Credentials;
use crate::{config::Settings, registration, server::open_storage, state::Clock};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// An argument is invalid; nothing was written.
    #[error("{0}")]
    InvalidArgument(String),
    /// No application has this client id.
    #[error("no application with client_id {0}")]
    UnknownApplication(ClientId),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `create-application` takes, as typed on the command line.
#[derive(Debug, Default)]
pub struct ApplicationInput {
    /// Shown to users.
    pub name: String,
    /// Addresses and CIDR ranges.
    pub ips: Vec<String>,
    /// The callback URL.
    pub callback_url: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Owner's email.
    pub owner: Option<String>,
}

/// The admin operations, bound to one database.
pub struct Admin {
    store: Store,
    vault: Vault,
    clock: Clock,
    /// The service's `private_callbacks` setting, which callback URLs are checked against.
    private_callbacks: bool,
}

fn invalid(field: &str, error: impl std::fmt::Display) -> AdminError {
    AdminError::InvalidArgument(format!("{field}: {error}"))
}

fn parse_client_id(raw: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(raw).map_err(|e| invalid("CLIENT_ID", e))
}

impl Admin {
    /// Opens the database named by `settings`.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (store, vault) = open_storage(settings).await?;
        Ok(Self {
            store,
            vault,
            clock: Clock::system(),
            private_callbacks: settings.private_callbacks,
        })
    }

    /// Closes the database.
    pub async fn close(self) {
        self.store.close().await;
    }

    /// Registers an active application and returns its credentials. Every argument is checked
    /// before anything is written.
    pub async fn create_application(
        &self,
        input: &ApplicationInput,
    ) -> Result<Credentials, AdminError> {
        let settings = registration::Settings::parse(
            &input.name,
            &input.ips,
            &input.callback_url,
            &input.redirect_uris,
            self.private_callbacks,
        )
        .map_err(|errors| match errors.first() {
            Some(error) => invalid(error.field.flag(), &error.message),
            None => AdminError::InvalidArgument("invalid application settings".into()),
        })?;
        let owner = input
            .owner
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| invalid("--owner", e))?;

        let (application, credentials) =
            registration::new_application(settings, owner, &self.vault, self.clock.now());
        self.store.insert_application(&application).await?;
        tracing::info!(client_id = %credentials.client_id, "application created");
        Ok(credentials)
    }

    /// Every application.
    pub async fn list_applications(&self) -> Result<Vec<Application>, AdminError> {
        Ok(self.store.applications().await?)
    }

    /// Activates or deactivates an application.
    pub async fn set_active(&self, client_id: &str, active: bool) -> Result<(), AdminError> {
        let client_id = parse_client_id(client_id)?;
        if !self
            .store
            .set_application_active(client_id, active, self.clock.now())
            .await?
        {
            return Err(AdminError::UnknownApplication(client_id));
        }
        tracing::info!(%client_id, active, "application activation changed");
        Ok(())
    }

    /// Gives an application a new API key; the old one stops working at once.
    pub async fn rotate_api_key(&self, client_id: &str) -> Result<ApiKey, AdminError> {
        let client_id = parse_client_id(client_id)?;
        let api_key = ApiKey::generate();
        if !self
            .store
            .replace_api_key(client_id, &api_key.hash(), self.clock.now())
            .await?
        {
            return Err(AdminError::UnknownApplication(client_id));
        }
        tracing::info!(%client_id, "API key rotated");
        Ok(api_key)
    }
}
