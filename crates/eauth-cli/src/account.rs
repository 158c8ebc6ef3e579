//! One account of the authenticator (issuer, name, secret and code parameters, plus the
//! eAuthenticator registration data) and how a user names it on the command line.

use eauth_core::{ClientId, Email, TotpParams, TotpSecret};

/// An account whose codes `eauth` shows. Its `Debug` shows nothing of the secret.
#[derive(Debug, Clone)]
pub struct Account {
    issuer: Option<String>,
    name: String,
    secret: TotpSecret,
    params: TotpParams,
    client_id: Option<ClientId>,
    email: Option<Email>,
}

/// The eAuthenticator data of an account, kept for push approval: with it the app can
/// register itself with the service for this user.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The application's `client_id`, from the provisioning URI.
    pub client_id: Option<ClientId>,
    /// The user's email as the application knows it, from the provisioning URI.
    pub email: Option<Email>,
}

impl Account {
    /// `name` must not be empty and an `issuer`, if any, not empty either: the URI parser and
    /// the accounts file check both before building one.
    pub(crate) fn new(
        issuer: Option<String>,
        name: String,
        secret: TotpSecret,
        params: TotpParams,
        registration: Registration,
    ) -> Self {
        Self {
            issuer,
            name,
            secret,
            params,
            client_id: registration.client_id,
            email: registration.email,
        }
    }

    /// The service, when known (`Example` in `Example:alice@google.com`).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The account at the service (`alice@google.com`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the user names the account: `issuer:name`, or `name` when there is no issuer.
    pub fn label(&self) -> String {
        match &self.issuer {
            Some(issuer) => format!("{issuer}:{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The shared secret.
    pub fn secret(&self) -> &TotpSecret {
        &self.secret
    }

    /// Algorithm, digits and period.
    pub fn params(&self) -> TotpParams {
        self.params
    }

    /// The eAuthenticator `client_id` of the application, when the URI carried one.
    pub fn client_id(&self) -> Option<ClientId> {
        self.client_id
    }

    /// The user's email at the application, when the URI carried one.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }

    /// Two records for the same issuer and name would show two codes under one label, and
    /// the user could not tell which one the service expects.
    pub fn is_same_account_as(&self, other: &Account) -> bool {
        self.issuer == other.issuer && self.name == other.name
    }

    /// The code for the time step that `unix_seconds` falls in.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.secret.code_at(self.params, unix_seconds)
    }

    /// Whole seconds until the code of `unix_seconds` expires (1 to the period).
    pub fn seconds_left(&self, unix_seconds: u64) -> u64 {
        let period = u64::from(self.params.period());
        period - unix_seconds % period
    }
}

/// Why a name on the command line does not pick one account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The accounts file holds no account.
    #[error("there are no accounts yet: add one with `eauth add URI`")]
    NoAccounts,
    /// No name was given and there is more than one account.
    #[error("there are {0} accounts: name one (see `eauth list`)")]
    NameOne(usize),
    /// Nothing matches the name.
    #[error("no account matches {0:?} (see `eauth list`)")]
    NotFound(String),
    /// Several accounts match the name.
    #[error("{query:?} matches {}: be more precise", .labels.join(", "))]
    Ambiguous {
        /// What the user typed.
        query: String,
        /// The labels of the matching accounts.
        labels: Vec<String>,
    },
}

/// Picks the account that `query` names, returning its index in `accounts`.
///
/// The exact label wins, then the label in any case, then a case-insensitive part of the label
/// matching one account only: `github` finds `GitHub:alice` while `GitHub:alice` still picks
/// that account when `GitHub:alice2` exists too. Without a query the only account is picked.
pub fn select(accounts: &[Account], query: Option<&str>) -> Result<usize, SelectError> {
    let Some(query) = query else {
        return match accounts.len() {
            0 => Err(SelectError::NoAccounts),
            1 => Ok(0),
            n => Err(SelectError::NameOne(n)),
        };
    };
    if accounts.is_empty() {
        return Err(SelectError::NoAccounts);
    }
    let labels: Vec<String> = accounts.iter().map(Account::label).collect();
    let lower_query = query.to_lowercase();
    let tiers: [&dyn Fn(&str) -> bool; 3] = [
        &|label| label == query,
        &|label| label.to_lowercase() == lower_query,
        &|label| label.to_lowercase().contains(&lower_query),
    ];
    for matches in tiers {
        let found: Vec<usize> = (0..labels.len()).filter(|&i| matches(&labels[i])).collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(*one),
            several => {
                return Err(SelectError::Ambiguous {
                    query: query.to_owned(),
                    labels: several.iter().map(|&i| labels[i].clone()).collect(),
                });
            }
        }
    }
    Err(SelectError::NotFound(query.to_owned()))
}

#[cfg(test)]
mod tests {
    use eauth_core::Algorithm;

    use super::*;

    fn account(issuer: Option<&str>, name: &str) -> Account {
        Account::new(
            issuer.map(str::to_owned),
            name.to_owned(),
            TotpSecret::generate(),
            TotpParams::new(Algorithm::Sha1, 6, 30).expect("valid params"),
            Registration::default(),
        )
    }

    #[test]
    fn the_label_joins_issuer_and_name_with_a_colon() {
        assert_eq!(account(Some("ACME Co"), "john").label(), "ACME Co:john");
        assert_eq!(account(None, "john").label(), "john");
    }

    #[test]
    fn the_only_account_needs_no_name_and_several_do() {
        assert_eq!(select(&[], None), Err(SelectError::NoAccounts));
        assert_eq!(select(&[], Some("x")), Err(SelectError::NoAccounts));
        assert_eq!(select(&[account(None, "a")], None), Ok(0));
        let two = [account(None, "a"), account(None, "b")];
        assert_eq!(select(&two, None), Err(SelectError::NameOne(2)));
    }

    #[test]
    fn exact_labels_beat_substrings_and_case_insensitive_matches() {
        let accounts = [
            account(Some("GitHub"), "alice"),
            account(Some("GitHub"), "alice2"),
            account(Some("Example"), "bob@example.com"),
            account(Some("example"), "BOB@example.com"),
            account(None, "carol"),
        ];
        let cases: [(&str, Result<usize, ()>); 9] = [
            ("GitHub:alice", Ok(0)),
            ("github:alice", Ok(0)),
            ("GitHub:alice2", Ok(1)),
            ("alice2", Ok(1)),
            ("Example:bob@example.com", Ok(2)),
            ("example:BOB@example.com", Ok(3)),
            ("carol", Ok(4)),
            ("CAR", Ok(4)),
            ("alice", Err(())),
        ];
        for (query, expected) in cases {
            assert_eq!(
                select(&accounts, Some(query)).map_err(|_| ()),
                expected,
                "{query}"
            );
        }
    }

    #[test]
    fn ambiguous_and_unknown_names_say_so() {
        let accounts = [
            account(Some("GitHub"), "alice"),
            account(Some("GitLab"), "alice"),
        ];
        assert_eq!(
            select(&accounts, Some("git")),
            Err(SelectError::Ambiguous {
                query: "git".into(),
                labels: vec!["GitHub:alice".into(), "GitLab:alice".into()],
            })
        );
        assert_eq!(
            select(&accounts, Some("bob")),
            Err(SelectError::NotFound("bob".into()))
        );
    }

    #[test]
    fn codes_expire_at_the_end_of_their_period() {
        let a = account(None, "a");
        let step_start: u64 = 1_699_999_980; // a multiple of 30
        assert_eq!(a.seconds_left(step_start), 30);
        assert_eq!(a.seconds_left(step_start + 9), 21);
        assert_eq!(a.seconds_left(step_start + 10), 20);
        assert_eq!(a.seconds_left(step_start + 29), 1);
    }
}
