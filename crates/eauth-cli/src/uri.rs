//! `otpauth://totp/...` provisioning URIs, as QR codes carry them: Google's Key URI format and
//! the integration guide's variant with `client_id` and `email`, parsed into an [`Account`]
//! plus the warnings the user should read.
//!
//! The rules follow Google Authenticator where the format leaves room:
//! - the label is percent-decoded only (`+` stays a plus: it is a path, not a form);
//! - query values are form-decoded (`issuer=ACME+Co` is `ACME Co`, as Python's `urlencode`
//!   writes it), except `email`, whose `+` stays a plus: a space is never in an address and
//!   `jane+tag@example.com` is, and the guide's template does not encode it;
//! - the `issuer` parameter wins over the issuer prefix of the label when both are present
//!   (the Key URI format says they should be equal; the parameter is the one meant for
//!   machines, and the label is often just a display string), and the user is warned;
//! - unknown parameters (`image`, `color`, ...) are ignored;
//! - a secret is base32 in any case, with or without padding, spaces removed.

use std::{borrow::Cow, fmt};

use eauth_core::{
    Algorithm, ClientId, Email, TotpParams, TotpSecret,
    totp::{MIN_SECRET_BYTES, TotpParamsError, TotpSecretError},
};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::account::{Account, Registration};

/// Code parameters when the URI leaves them out (Key URI format defaults).
const DEFAULT_DIGITS: i64 = 6;
const DEFAULT_PERIOD: i64 = 30;

/// A parsed provisioning URI.
#[derive(Debug)]
pub struct Provisioning {
    /// The account to store.
    pub account: Account,
    /// What the user should know although the URI was accepted.
    pub warnings: Vec<Warning>,
}

/// Why a provisioning URI is refused. The messages never include the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No scheme: a bare secret, a name, or a URI cut at the front.
    #[error("not a URI: expected otpauth://totp/ISSUER:NAME?secret=...")]
    NotAUri,
    /// Has a scheme but is malformed.
    #[error("not a valid URI ({0})")]
    Invalid(url::ParseError),
    /// Another scheme, e.g. an `https://` link.
    #[error("not an otpauth:// URI (the scheme is {0:?})")]
    NotOtpauth(String),
    /// Counter-based codes need state the app would have to keep in sync with the service.
    #[error("HOTP (counter-based) accounts are not supported: only otpauth://totp/ URIs")]
    Hotp,
    /// Neither `totp` nor `hotp`.
    #[error("unknown OTP type {0:?}: only otpauth://totp/ URIs are supported")]
    UnknownType(String),
    /// The label has no account name after the issuer.
    #[error("the URI's label has no account name (otpauth://totp/ISSUER:NAME?...)")]
    NoAccountName,
    /// A percent-encoded part does not decode to text.
    #[error("the URI's {0} is not valid UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    /// The same parameter twice: which one was meant?
    #[error("the parameter {0:?} appears more than once")]
    RepeatedParameter(String),
    /// No `secret` parameter.
    #[error("the URI has no secret parameter")]
    MissingSecret,
    /// The secret is empty, not base32 or absurdly long.
    #[error("{0}")]
    Secret(TotpSecretError),
    /// Not SHA1, SHA256 or SHA512.
    #[error("unsupported algorithm {0:?}: use SHA1, SHA256 or SHA512")]
    Algorithm(String),
    /// Not 6, 7 or 8.
    #[error("unsupported digits {0:?}: use 6, 7 or 8")]
    Digits(String),
    /// Outside 15 to 300 seconds.
    #[error("unsupported period {0:?}: use 15 to 300 seconds")]
    Period(String),
}

/// Something the user should know about an accepted URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Fewer than 128 bits: still common (80-bit secrets), but below RFC 4226's minimum.
    ShortSecret {
        /// The secret's length in bits.
        bits: usize,
    },
    /// The label's issuer prefix and the `issuer` parameter differ; the parameter was used.
    IssuerMismatch {
        /// The prefix of the label.
        label: String,
        /// The `issuer` parameter, which was kept.
        parameter: String,
    },
    /// A `client_id` that is not a UUID was ignored.
    BadClientId(String),
    /// An `email` that is not an address was ignored.
    BadEmail(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortSecret { bits } => write!(
                f,
                "the secret has only {bits} bits (128 or more are recommended); \
                 it works, but ask the service for a longer one if it offers to"
            ),
            Self::IssuerMismatch { label, parameter } => write!(
                f,
                "the label says the issuer is {label:?} but the issuer parameter says \
                 {parameter:?}; using {parameter:?}"
            ),
            Self::BadClientId(raw) => write!(
                f,
                "ignoring client_id {raw:?}: not a UUID (push approval will not be \
                 available for this account)"
            ),
            Self::BadEmail(raw) => write!(
                f,
                "ignoring email {raw:?}: not an email address (push approval will not be \
                 available for this account)"
            ),
        }
    }
}

/// The query parameters this parser reads; the others are ignored.
#[derive(Default)]
struct Parameters {
    secret: Option<String>,
    issuer: Option<String>,
    algorithm: Option<String>,
    digits: Option<String>,
    period: Option<String>,
    client_id: Option<String>,
    email: Option<String>,
}

/// Parses an `otpauth://totp/` URI (surrounding white space is ignored: QR codes and pasted
/// text often carry a newline).
pub fn parse(raw: &str) -> Result<Provisioning, UriError> {
    let url = Url::parse(raw.trim()).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => UriError::NotAUri,
        other => UriError::Invalid(other),
    })?;
    if url.scheme() != "otpauth" {
        return Err(UriError::NotOtpauth(url.scheme().to_owned()));
    }
    let kind = url.host_str().unwrap_or_default();
    if kind.eq_ignore_ascii_case("hotp") {
        return Err(UriError::Hotp);
    }
    if !kind.eq_ignore_ascii_case("totp") {
        return Err(UriError::UnknownType(kind.to_owned()));
    }
    let (label_issuer, name) = parse_label(url.path())?;
    let parameters = parse_query(url.query().unwrap_or_default())?;
    let mut warnings = Vec::new();

    let secret = parameters
        .secret
        .as_deref()
        .ok_or(UriError::MissingSecret)?;
    let secret: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    let secret = TotpSecret::parse_any_length(&secret).map_err(UriError::Secret)?;
    let bytes = secret.expose_bytes().len();
    if bytes < MIN_SECRET_BYTES {
        warnings.push(Warning::ShortSecret { bits: bytes * 8 });
    }

    let params = parse_params(&parameters)?;

    let issuer = match (label_issuer, non_blank(parameters.issuer)) {
        (Some(label), Some(parameter)) => {
            if !label.eq_ignore_ascii_case(&parameter) {
                warnings.push(Warning::IssuerMismatch {
                    label,
                    parameter: parameter.clone(),
                });
            }
            Some(parameter)
        }
        (label, parameter) => parameter.or(label),
    };

    let mut registration = Registration::default();
    if let Some(raw) = non_blank(parameters.client_id) {
        match ClientId::parse(&raw) {
            Ok(id) => registration.client_id = Some(id),
            Err(_) => warnings.push(Warning::BadClientId(raw)),
        }
    }
    if let Some(raw) = non_blank(parameters.email) {
        match Email::parse(&raw) {
            Ok(email) => registration.email = Some(email),
            Err(_) => warnings.push(Warning::BadEmail(raw)),
        }
    }

    Ok(Provisioning {
        account: Account::new(issuer, name, secret, params, registration),
        warnings,
    })
}

/// `ISSUER:NAME`, `ISSUER%3ANAME` or `NAME`, with optional spaces before the name.
fn parse_label(path: &str) -> Result<(Option<String>, String), UriError> {
    let encoded = path.strip_prefix('/').unwrap_or(path);
    let label = percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| UriError::NotUtf8("label"))?;
    let (issuer, name) = match label.split_once(':') {
        Some((issuer, name)) => (non_blank(Some(issuer.to_owned())), name),
        None => (None, label.as_ref()),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(UriError::NoAccountName);
    }
    Ok((issuer, name.to_owned()))
}

/// Percent-decoding, with or without `+` as a space; `Err` when the bytes are not UTF-8.
type Decoder = fn(&str) -> Result<Cow<'_, str>, ()>;

fn parse_query(query: &str) -> Result<Parameters, UriError> {
    let mut parameters = Parameters::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(key)
            .map_err(|_| UriError::NotUtf8("parameter name"))?
            .to_ascii_lowercase();
        let (slot, decode): (_, Decoder) = match key.as_str() {
            "secret" => (&mut parameters.secret, form_decode),
            "issuer" => (&mut parameters.issuer, form_decode),
            "algorithm" => (&mut parameters.algorithm, form_decode),
            "digits" => (&mut parameters.digits, form_decode),
            "period" => (&mut parameters.period, form_decode),
            "client_id" => (&mut parameters.client_id, form_decode),
            "email" => (&mut parameters.email, percent_decode),
            _ => continue,
        };
        if slot.is_some() {
            return Err(UriError::RepeatedParameter(key));
        }
        let value = decode(value).map_err(|()| UriError::NotUtf8("query"))?;
        *slot = Some(value.into_owned());
    }
    Ok(parameters)
}

fn parse_params(parameters: &Parameters) -> Result<TotpParams, UriError> {
    let algorithm = match &parameters.algorithm {
        Some(raw) => Algorithm::parse(raw).ok_or_else(|| UriError::Algorithm(raw.clone()))?,
        None => Algorithm::Sha1,
    };
    let digits = integer(
        parameters.digits.as_deref(),
        DEFAULT_DIGITS,
        UriError::Digits,
    )?;
    let period = integer(
        parameters.period.as_deref(),
        DEFAULT_PERIOD,
        UriError::Period,
    )?;
    TotpParams::new(algorithm, digits, period).map_err(|error| match error {
        TotpParamsError::Digits => UriError::Digits(digits.to_string()),
        TotpParamsError::Period => UriError::Period(period.to_string()),
    })
}

/// An integer parameter, or `default` when it is absent; `refused` makes the error that quotes
/// a value that is not an integer.
fn integer(
    raw: Option<&str>,
    default: i64,
    refused: fn(String) -> UriError,
) -> Result<i64, UriError> {
    raw.map_or(Ok(default), |raw| {
        raw.trim().parse().map_err(|_| refused(raw.to_owned()))
    })
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn percent_decode(raw: &str) -> Result<Cow<'_, str>, ()> {
    percent_decode_str(raw).decode_utf8().map_err(|_| ())
}

fn form_decode(raw: &str) -> Result<Cow<'_, str>, ()> {
    if raw.contains('+') {
        let spaced = raw.replace('+', " ");
        percent_decode(&spaced).map(|decoded| Cow::Owned(decoded.into_owned()))
    } else {
        percent_decode(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE_CLIENT_ID: &str = "84c2ad6c-62eb-4217-8f46-a66852e6fe92";

    struct Expected<'a> {
        issuer: Option<&'a str>,
        name: &'a str,
        secret: &'a str,
        algorithm: Algorithm,
        digits: u8,
        period: u16,
        client_id: Option<&'a str>,
        email: Option<&'a str>,
        warnings: Vec<Warning>,
    }

    impl Expected<'_> {
        fn defaults() -> Self {
            Expected {
                issuer: None,
                name: "",
                secret: "JBSWY3DPEHPK3PXP",
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30,
                client_id: None,
                email: None,
                warnings: vec![Warning::ShortSecret { bits: 80 }],
            }
        }
    }

    fn check(uri: &str, expected: Expected<'_>) {
        let parsed = parse(uri).unwrap_or_else(|error| panic!("{uri}: {error}"));
        let account = &parsed.account;
        assert_eq!(account.issuer(), expected.issuer, "issuer of {uri}");
        assert_eq!(account.name(), expected.name, "name of {uri}");
        assert_eq!(
            account.secret().to_base32(),
            expected.secret,
            "secret of {uri}"
        );
        let params = account.params();
        assert_eq!(params.algorithm(), expected.algorithm, "algorithm of {uri}");
        assert_eq!(params.digits(), expected.digits, "digits of {uri}");
        assert_eq!(params.period(), expected.period, "period of {uri}");
        assert_eq!(
            account.client_id().map(|id| id.to_string()).as_deref(),
            expected.client_id,
            "client_id of {uri}"
        );
        assert_eq!(
            account.email().map(Email::as_str),
            expected.email,
            "email of {uri}"
        );
        assert_eq!(parsed.warnings, expected.warnings, "warnings of {uri}");
    }

    #[test]
    fn the_integration_guides_uri_keeps_client_id_and_email() {
        check(
            &format!(
                "otpauth://totp/My%20Portal:jane@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
                 &issuer=My%20Portal&algorithm=SHA1&digits=6&client_id={GUIDE_CLIENT_ID}\
                 &email=jane@example.com"
            ),
            Expected {
                issuer: Some("My Portal"),
                name: "jane@example.com",
                secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                client_id: Some(GUIDE_CLIENT_ID),
                email: Some("jane@example.com"),
                warnings: vec![],
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn the_guides_unencoded_plus_address_keeps_its_plus() {
        check(
            &format!(
                "otpauth://totp/Portal:jane+2fa@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
                 &issuer=Portal&client_id={GUIDE_CLIENT_ID}&email=jane+2fa@example.com"
            ),
            Expected {
                issuer: Some("Portal"),
                name: "jane+2fa@example.com",
                secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                client_id: Some(GUIDE_CLIENT_ID),
                email: Some("jane+2fa@example.com"),
                warnings: vec![],
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn google_authenticators_wiki_examples() {
        check(
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
            Expected {
                issuer: Some("Example"),
                name: "alice@google.com",
                ..Expected::defaults()
            },
        );
        check(
            "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ\
             &issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30",
            Expected {
                issuer: Some("ACME Co"),
                name: "john.doe@email.com",
                secret: "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ",
                warnings: vec![],
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn label_encodings() {
        let cases: [(&str, Option<&str>, &str); 8] = [
            // An encoded colon separates like a plain one.
            (
                "Example%3Aalice@google.com",
                Some("Example"),
                "alice@google.com",
            ),
            // Spaces, plain or encoded, may precede the name.
            (
                "Example:%20%20alice@google.com",
                Some("Example"),
                "alice@google.com",
            ),
            ("Big%20Corp:%20alice", Some("Big Corp"), "alice"),
            // `%40` is `@`; `+` is a plus in a path.
            (
                "Example:alice%40google.com",
                Some("Example"),
                "alice@google.com",
            ),
            ("A+B:alice+tag@x.org", Some("A+B"), "alice+tag@x.org"),
            // No issuer prefix at all, or an empty one.
            ("alice@google.com", None, "alice@google.com"),
            (":alice", None, "alice"),
            // Non-ASCII, percent-encoded as UTF-8.
            ("Soci%C3%A9t%C3%A9:z%C3%B6e", Some("Société"), "zöe"),
        ];
        for (label, issuer, name) in cases {
            check(
                &format!("otpauth://totp/{label}?secret=JBSWY3DPEHPK3PXP"),
                Expected {
                    issuer,
                    name,
                    ..Expected::defaults()
                },
            );
        }
    }

    #[test]
    fn the_issuer_parameter_wins_over_the_label_and_the_user_is_told() {
        check(
            "otpauth://totp/Old%20Name:alice?secret=JBSWY3DPEHPK3PXP&issuer=New+Name",
            Expected {
                issuer: Some("New Name"),
                name: "alice",
                warnings: vec![
                    Warning::ShortSecret { bits: 80 },
                    Warning::IssuerMismatch {
                        label: "Old Name".into(),
                        parameter: "New Name".into(),
                    },
                ],
                ..Expected::defaults()
            },
        );
        // The parameter alone names the issuer too; an empty one names none.
        check(
            "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&issuer=Example",
            Expected {
                issuer: Some("Example"),
                name: "alice",
                ..Expected::defaults()
            },
        );
        check(
            "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=",
            Expected {
                issuer: Some("Example"),
                name: "alice",
                ..Expected::defaults()
            },
        );
        // Only the case differs: same issuer, no warning, the parameter's spelling.
        check(
            "otpauth://totp/example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example",
            Expected {
                issuer: Some("Example"),
                name: "alice",
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn parameters_in_any_order_case_and_spelling() {
        check(
            "  OTPAUTH://TOTP/Example:alice?period=60&Digits=8&algorithm=sha512\
             &secret=jbsw%20y3dp+ehpk3pxp%3D%3D%3D%3D&image=https%3A%2F%2Fx.org%2Fi.png\n",
            Expected {
                issuer: Some("Example"),
                name: "alice",
                algorithm: Algorithm::Sha512,
                digits: 8,
                period: 60,
                ..Expected::defaults()
            },
        );
        check(
            "otpauth://totp/a?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=SHA256&digits=7\
             &period=15",
            Expected {
                name: "a",
                secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                algorithm: Algorithm::Sha256,
                digits: 7,
                period: 15,
                warnings: vec![],
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn unusable_registration_data_is_dropped_with_a_warning() {
        check(
            "otpauth://totp/P:alice?secret=JBSWY3DPEHPK3PXP&client_id=abc&email=not-an-address",
            Expected {
                issuer: Some("P"),
                name: "alice",
                warnings: vec![
                    Warning::ShortSecret { bits: 80 },
                    Warning::BadClientId("abc".into()),
                    Warning::BadEmail("not-an-address".into()),
                ],
                ..Expected::defaults()
            },
        );
    }

    #[test]
    fn bad_uris_are_refused_with_their_reason() {
        let s = "secret=JBSWY3DPEHPK3PXP";
        let cases: Vec<(String, UriError)> = vec![
            ("".into(), UriError::NotAUri),
            ("JBSWY3DPEHPK3PXP".into(), UriError::NotAUri),
            ("//totp/a?secret=JBSWY3DPEHPK3PXP".into(), UriError::NotAUri),
            (
                "otpauth://totp:99999999/a?secret=JBSWY3DPEHPK3PXP".into(),
                UriError::Invalid(url::ParseError::InvalidPort),
            ),
            (
                "https://example.com/totp/a?secret=JBSWY3DPEHPK3PXP".into(),
                UriError::NotOtpauth("https".into()),
            ),
            (format!("otpauth://hotp/a?{s}&counter=1"), UriError::Hotp),
            (format!("otpauth://HOTP/a?{s}"), UriError::Hotp),
            (
                format!("otpauth://motp/a?{s}"),
                UriError::UnknownType("motp".into()),
            ),
            (
                format!("otpauth:totp/a?{s}"),
                UriError::UnknownType("".into()),
            ),
            (format!("otpauth://totp?{s}"), UriError::NoAccountName),
            (format!("otpauth://totp/?{s}"), UriError::NoAccountName),
            (
                format!("otpauth://totp/Example:?{s}"),
                UriError::NoAccountName,
            ),
            (
                format!("otpauth://totp/Example:%20?{s}"),
                UriError::NoAccountName,
            ),
            (
                format!("otpauth://totp/%FF?{s}"),
                UriError::NotUtf8("label"),
            ),
            (
                format!("otpauth://totp/a?{s}&issuer=%FF"),
                UriError::NotUtf8("query"),
            ),
            ("otpauth://totp/a".into(), UriError::MissingSecret),
            ("otpauth://totp/a?issuer=x".into(), UriError::MissingSecret),
            (
                "otpauth://totp/a?secret=".into(),
                UriError::Secret(TotpSecretError::Empty),
            ),
            (
                "otpauth://totp/a?secret=%20".into(),
                UriError::Secret(TotpSecretError::Empty),
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PX1".into(),
                UriError::Secret(TotpSecretError::NotBase32),
            ),
            (
                "otpauth://totp/a?secret=not-base32!".into(),
                UriError::Secret(TotpSecretError::NotBase32),
            ),
            (
                format!("otpauth://totp/a?secret={}", "A".repeat(300)),
                UriError::Secret(TotpSecretError::TooLong),
            ),
            (
                format!("otpauth://totp/a?{s}&secret=GEZDGNBVGY3TQOJQ"),
                UriError::RepeatedParameter("secret".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&digits=6&DIGITS=6"),
                UriError::RepeatedParameter("digits".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&algorithm=MD5"),
                UriError::Algorithm("MD5".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&algorithm="),
                UriError::Algorithm("".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&digits=5"),
                UriError::Digits("5".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&digits=9"),
                UriError::Digits("9".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&digits=six"),
                UriError::Digits("six".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&digits=99999999999999999999"),
                UriError::Digits("99999999999999999999".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&period=0"),
                UriError::Period("0".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&period=10"),
                UriError::Period("10".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&period=301"),
                UriError::Period("301".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&period=-30"),
                UriError::Period("-30".into()),
            ),
            (
                format!("otpauth://totp/a?{s}&period=30s"),
                UriError::Period("30s".into()),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(parse(&uri).map(|_| ()), Err(expected), "{uri:?}");
        }
    }

    #[test]
    fn error_messages_are_one_line_and_never_show_the_secret() {
        let secret = "SECRETSECRETSECRET7";
        for uri in [
            format!("otpauth://totp/a?secret={secret}!"),
            format!("otpauth://hotp/a?secret={secret}"),
            format!("otpauth://totp/a?secret={secret}&digits=12"),
            format!("otpauth://totp/a?secret={secret}&secret={secret}"),
        ] {
            let message = parse(&uri).expect_err("refused").to_string();
            assert!(!message.contains(secret), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
