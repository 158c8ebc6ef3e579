//! The user's email address, as applications name their users to the service.

use std::fmt;

use email_address::{EmailAddress, Options};

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1, path limit less the brackets).
const MAX_LEN: usize = 254;

/// A syntactically valid email address, trimmed and lower-cased.
///
/// The guide identifies users by email within an application; integrators send the same
/// address with whatever capitalisation their users typed, so the service compares addresses
/// case-insensitively by storing only the lower-cased form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

/// Why a string is not an [`Email`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but white space.
    #[error("email is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("email is longer than {MAX_LEN} characters")]
    TooLong,
    /// Not of the form `local@domain`.
    #[error("email is not a valid address")]
    Invalid,
}

impl Email {
    /// Parses an address as received from the network.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let options = Options {
            allow_display_text: false,
            allow_domain_literal: false,
            ..Options::default()
        };
        EmailAddress::parse_with_options(trimmed, options).map_err(|_| EmailError::Invalid)?;
        // RFC 5322 allows a quoted `"a:b"@example.com`; a colon cannot stand in a TOTP label
        // (`issuer:email`), and no real mailbox needs one.
        if trimmed.contains(':') {
            return Err(EmailError::Invalid);
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as shown to someone looking over the user's shoulder: `j•••@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}•••@{domain}")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data: logs get the masked form.
        write!(f, "Email({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let email = Email::parse("  Jane.Doe@Example.COM \n").expect("valid");
        assert_eq!(email.as_str(), "jane.doe@example.com");
    }

    #[test]
    fn bad_addresses_are_refused_with_their_reason() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("no-at-sign", EmailError::Invalid),
            ("a@", EmailError::Invalid),
            ("@example.com", EmailError::Invalid),
            ("Jane <jane@example.com>", EmailError::Invalid),
            ("jane@[127.0.0.1]", EmailError::Invalid),
            ("\"a:b\"@example.com", EmailError::Invalid),
        ];
        for (raw, expected) in cases {
            assert_eq!(Email::parse(raw), Err(expected), "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn debug_output_masks_the_address() {
        let email = Email::parse("jane@example.com").expect("valid");
        assert_eq!(format!("{email:?}"), "Email(j•••@example.com)");
    }
}
