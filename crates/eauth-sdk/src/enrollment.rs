//! Enrolling a user (guide, Step 2): a fresh TOTP secret, the provisioning URI and its QR
//! code for the eAuthenticator app, and the check of the first code the user types.
//!
//! The TOTP rules themselves (parameters, the ±1 step window, constant-time comparison) are
//! `eauth-core`'s, the same code the service verifies sign-ins with.

use std::{fmt::Write as _, time::SystemTime};

use eauth_core::{
    ApplicationName, ClientId, Email, TotpCode, TotpParams, TotpSecret,
    application::ApplicationNameError, email::EmailError,
};
use image::ImageEncoder as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::{EcLevel, QrCode};

use crate::unix_seconds;

/// What is percent-encoded in the URI's label and parameter values: everything but RFC
/// 3986's unreserved characters and `@` (legal in both places, and what every example of
/// the format shows). `+` is encoded, so that form decoders do not read it as a space; so
/// are `&`, `=`, `#`, `%`, `:`, `/`, `?` and spaces (`%20`, which apps read in a label, where
/// `+` would be taken literally).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Pixels per QR module in [`Enrollment::qr_png`]: about 400 px for a typical URI.
const PNG_MODULE_PIXELS: u32 = 8;
/// Smallest side of [`Enrollment::qr_svg`], in SVG user units.
const SVG_MIN_SIZE: u32 = 256;

/// A user's TOTP enrollment with this application, before and after the user confirms it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use eauth_sdk::{ClientId, Enrollment, TotpSecret};
///
/// let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92")?;
///
/// // Show a fresh enrollment's QR code (`qr_svg` or `qr_png`) next to a code field ...
/// let enrollment = Enrollment::generate(client_id, "My Portal", "jane@example.com")?;
/// let svg = enrollment.qr_svg()?;
/// assert!(svg.contains("<svg"));
///
/// // ... keep its secret with the pending enrollment (the SDK does not store anything) ...
/// let stored = enrollment.secret().to_base32();
///
/// // ... and when the code comes back, rebuild it and check the code.
/// let secret = TotpSecret::parse(&stored)?;
/// let enrollment = Enrollment::from_secret(client_id, "My Portal", "jane@example.com", secret)?;
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let typed = enrollment.code_at(now); // what the app shows; in real life the user types it
/// assert_eq!(enrollment.verify(&typed, now), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Enrollment {
    client_id: ClientId,
    issuer: ApplicationName,
    email: Email,
    secret: TotpSecret,
}

/// Why an enrollment cannot be made for these names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollmentError {
    /// The issuer (the application's name) is empty, longer than 100 characters, or contains a
    /// colon or a control character: the colon separates issuer and account in the label.
    #[error("issuer: {0}")]
    Issuer(ApplicationNameError),
    /// Not a valid email address (a colon, possible in a quoted local part, is refused too:
    /// it cannot stand in a TOTP label).
    #[error("email: {0}")]
    Email(EmailError),
}

/// Why a QR code could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The URI does not fit in a QR code (only with very long, mostly non-ASCII names).
    #[error("the provisioning URI is too long for a QR code")]
    TooLong,
    /// The image could not be encoded.
    #[error("cannot render the QR code: {0}")]
    Render(String),
}

/// Why a typed code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Not 6 digits (white space aside): ask the user to type it again.
    #[error("a code is 6 digits")]
    NotACode,
    /// Not the code of this secret now (±30 s): the wrong account scanned, a mistyped digit,
    /// or a clock far off.
    #[error("the code is not correct")]
    Wrong,
}

impl Enrollment {
    /// A fresh enrollment for `email` with a new random 160-bit secret. `issuer` is the name
    /// the app shows for the account, normally the application's name.
    ///
    /// The email is trimmed and lower-cased, as the service compares addresses.
    pub fn generate(
        client_id: ClientId,
        issuer: &str,
        email: &str,
    ) -> Result<Self, EnrollmentError> {
        Self::from_secret(client_id, issuer, email, TotpSecret::generate())
    }

    /// The enrollment for a secret generated earlier (to show the QR code again, or to check
    /// the code of a pending enrollment).
    pub fn from_secret(
        client_id: ClientId,
        issuer: &str,
        email: &str,
        secret: TotpSecret,
    ) -> Result<Self, EnrollmentError> {
        let issuer = ApplicationName::parse(issuer).map_err(EnrollmentError::Issuer)?;
        let email = Email::parse(email).map_err(EnrollmentError::Email)?;
        Ok(Self {
            client_id,
            issuer,
            email,
            secret,
        })
    }

    /// The user's address, normalised (trimmed, lower case): what to pass to
    /// [`Client::enable_2fa`](crate::Client::enable_2fa).
    pub fn email(&self) -> &str {
        self.email.as_str()
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The secret: store it (encrypted) with the enrollment, and send it with
    /// [`Client::enable_2fa`](crate::Client::enable_2fa) once the user confirmed a code.
    pub fn secret(&self) -> &TotpSecret {
        &self.secret
    }

    /// The provisioning URI in the guide's format (Step 2.2):
    ///
    /// ```text
    /// otpauth://totp/{issuer}:{user_email}?secret={secret_key}&issuer={issuer}&algorithm=SHA1&digits=6&client_id={client_id}&email={user_email}
    /// ```
    ///
    /// with the issuer and the email percent-encoded in the label and in the parameters.
    ///
    /// ```
    /// use eauth_sdk::{ClientId, Enrollment, TotpSecret};
    ///
    /// let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92")?;
    /// let secret = TotpSecret::parse("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")?;
    /// let enrollment = Enrollment::from_secret(client_id, "Acme & Sons", "Jane+2fa@Example.com", secret)?;
    /// assert_eq!(
    ///     enrollment.provisioning_uri(),
    ///     "otpauth://totp/Acme%20%26%20Sons:jane%2B2fa@example.com\
    ///      ?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20%26%20Sons\
    ///      &algorithm=SHA1&digits=6&client_id=84c2ad6c-62eb-4217-8f46-a66852e6fe92\
    ///      &email=jane%2B2fa@example.com"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn provisioning_uri(&self) -> String {
        let issuer = utf8_percent_encode(self.issuer.as_str(), COMPONENT);
        let email = utf8_percent_encode(self.email.as_str(), COMPONENT);
        let mut uri = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            uri,
            "otpauth://totp/{issuer}:{email}?secret={secret}&issuer={issuer}&algorithm=SHA1\
             &digits=6&client_id={client_id}&email={email}",
            secret = self.secret.to_base32(),
            client_id = self.client_id,
        );
        uri
    }

    fn qr_code(&self) -> Result<QrCode, QrError> {
        // Level M (15 % of the symbol recoverable) scans well from a screen and keeps the
        // symbol small for a URI of this length.
        QrCode::with_error_correction_level(self.provisioning_uri(), EcLevel::M).map_err(|error| {
            match error {
                qrcode::types::QrError::DataTooLong => QrError::TooLong,
                other => QrError::Render(other.to_string()),
            }
        })
    }

    /// The provisioning URI as a QR code in SVG, black on white with its quiet zone, at least
    /// 256 units wide: a document to serve as `image/svg+xml` or to inline in HTML.
    ///
    /// ```
    /// # use eauth_sdk::{ClientId, Enrollment};
    /// # let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92")?;
    /// let enrollment = Enrollment::generate(client_id, "My Portal", "jane@example.com")?;
    /// let svg = enrollment.qr_svg()?;
    /// assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qr_svg(&self) -> Result<String, QrError> {
        use qrcode::render::svg;
        Ok(self
            .qr_code()?
            .render::<svg::Color<'_>>()
            .min_dimensions(SVG_MIN_SIZE, SVG_MIN_SIZE)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .quiet_zone(true)
            .build())
    }

    /// The provisioning URI as a QR code in PNG (8-bit grey, 8 pixels a module, with its
    /// quiet zone): bytes to serve as `image/png` or as a `data:` URL.
    ///
    /// ```
    /// # use eauth_sdk::{ClientId, Enrollment};
    /// # let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92")?;
    /// let enrollment = Enrollment::generate(client_id, "My Portal", "jane@example.com")?;
    /// let png = enrollment.qr_png()?;
    /// assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn qr_png(&self) -> Result<Vec<u8>, QrError> {
        let image = self
            .qr_code()?
            .render::<image::Luma<u8>>()
            .module_dimensions(PNG_MODULE_PIXELS, PNG_MODULE_PIXELS)
            .quiet_zone(true)
            .build();
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::L8,
            )
            .map_err(|error| QrError::Render(error.to_string()))?;
        Ok(png)
    }

    /// Checks the code the user typed after scanning (guide, Step 2.4: "your backend must
    /// verify this OTP to enable 2FA"): 6 digits, white space ignored, of the time step at
    /// `now` or of one step either side, compared in constant time.
    ///
    /// Only when this succeeds has the user proved their app holds the secret: then call
    /// [`Client::enable_2fa`](crate::Client::enable_2fa).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use eauth_sdk::{ClientId, CodeError, Enrollment, TotpSecret};
    ///
    /// // RFC 6238's SHA-1 test secret, whose code at 59 s is 287082 (RFC 4226 appendix D).
    /// let secret = TotpSecret::parse("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")?;
    /// let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92")?;
    /// let enrollment = Enrollment::from_secret(client_id, "My Portal", "jane@example.com", secret)?;
    /// let now = UNIX_EPOCH + Duration::from_secs(59);
    /// assert_eq!(enrollment.verify("287 082", now), Ok(()));
    /// assert_eq!(enrollment.verify("287083", now), Err(CodeError::Wrong));
    /// assert_eq!(enrollment.verify("2870", now), Err(CodeError::NotACode));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self, code: &str, now: SystemTime) -> Result<(), CodeError> {
        let code = TotpCode::parse(code).map_err(|_| CodeError::NotACode)?;
        let params = TotpParams::default();
        self.secret
            .verify(params, &code, unix_seconds(now), None)
            .map(|_step| ())
            .map_err(|_| CodeError::Wrong)
    }

    /// The code an authenticator app shows at `now`: for tests and demos.
    pub fn code_at(&self, now: SystemTime) -> String {
        self.secret
            .code_at(TotpParams::default(), unix_seconds(now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const CLIENT_ID: &str = "84c2ad6c-62eb-4217-8f46-a66852e6fe92";
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn client_id() -> ClientId {
        ClientId::parse(CLIENT_ID).expect("client id")
    }

    fn enrollment(issuer: &str, email: &str) -> Enrollment {
        let secret = TotpSecret::parse(SECRET).expect("secret");
        Enrollment::from_secret(client_id(), issuer, email, secret).expect("enrollment")
    }

    /// The URI's label (decoded issuer and account) and its decoded parameters, read the way
    /// an authenticator app reads them.
    fn read_back(uri: &str) -> (String, String, Vec<(String, String)>) {
        let parsed = url::Url::parse(uri).expect("a URL");
        assert_eq!(parsed.scheme(), "otpauth");
        assert_eq!(parsed.host_str(), Some("totp"));
        let label = percent_encoding::percent_decode_str(parsed.path().trim_start_matches('/'))
            .decode_utf8()
            .expect("UTF-8")
            .into_owned();
        let (issuer, account) = label.split_once(':').expect("issuer:account");
        let pairs = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        (issuer.to_owned(), account.to_owned(), pairs)
    }

    #[test]
    fn the_uri_has_the_guides_exact_format() {
        assert_eq!(
            enrollment("MyPortal", "user@example.com").provisioning_uri(),
            format!(
                "otpauth://totp/MyPortal:user@example.com?secret={SECRET}&issuer=MyPortal\
                 &algorithm=SHA1&digits=6&client_id={CLIENT_ID}&email=user@example.com"
            )
        );
    }

    #[test]
    fn names_with_spaces_ampersands_plus_signs_and_accents_survive_the_round_trip() {
        let cases = [
            ("My Portal", "user@example.com"),
            ("Acme & Sons", "jane+2fa@example.com"),
            (
                "Ärzte-Portal #1 / 100% sicher?=",
                "o'brien+a&b=c@example.com",
            ),
            ("日本のポータル", "user.name+tag@sub.example.co.uk"),
        ];
        for (issuer, email) in cases {
            let uri = enrollment(issuer, email).provisioning_uri();
            assert!(!uri.contains(' ') && !uri.contains('+'), "{uri}");
            let (label_issuer, label_account, pairs) = read_back(&uri);
            assert_eq!(label_issuer, issuer, "{uri}");
            assert_eq!(label_account, email, "{uri}");
            let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "secret",
                    "issuer",
                    "algorithm",
                    "digits",
                    "client_id",
                    "email"
                ],
                "{uri}"
            );
            let value = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(value("issuer"), Some(issuer));
            assert_eq!(value("email"), Some(email));
            assert_eq!(value("secret"), Some(SECRET));
            assert_eq!(value("client_id"), Some(CLIENT_ID));
        }
    }

    #[test]
    fn issuers_and_emails_that_cannot_stand_in_a_label_are_refused() {
        let generate = |issuer: &str, email: &str| {
            Enrollment::generate(client_id(), issuer, email).map(|_| ())
        };
        assert!(matches!(
            generate("Acme: Portal", "a@example.com"),
            Err(EnrollmentError::Issuer(ApplicationNameError::Forbidden))
        ));
        assert!(matches!(
            generate("  ", "a@example.com"),
            Err(EnrollmentError::Issuer(ApplicationNameError::Empty))
        ));
        assert!(matches!(
            generate("Line\nbreak", "a@example.com"),
            Err(EnrollmentError::Issuer(ApplicationNameError::Forbidden))
        ));
        assert!(matches!(
            generate("Acme", "not-an-email"),
            Err(EnrollmentError::Email(EmailError::Invalid))
        ));
        // A quoted local part is a valid address, but its colon would split the label.
        assert_eq!(
            generate("Acme", "\"a:b\"@example.com"),
            Err(EnrollmentError::Email(
                eauth_core::email::EmailError::Invalid
            ))
        );
    }

    #[test]
    fn emails_are_normalised_as_the_service_compares_them() {
        let e = enrollment("Acme", "  Jane.Doe@Example.COM ");
        assert_eq!(e.email(), "jane.doe@example.com");
        assert!(
            e.provisioning_uri()
                .ends_with("&email=jane.doe@example.com")
        );
    }

    #[test]
    fn generated_secrets_are_fresh_and_160_bits() {
        let a = Enrollment::generate(client_id(), "Acme", "a@example.com").expect("a");
        let b = Enrollment::generate(client_id(), "Acme", "a@example.com").expect("b");
        assert_eq!(a.secret().expose_bytes().len(), 20);
        assert_eq!(a.secret().to_base32().len(), 32);
        assert_ne!(a.secret().expose_bytes(), b.secret().expose_bytes());
        assert!(!format!("{a:?}").contains(&a.secret().to_base32()));
    }

    #[test]
    fn the_png_scans_back_to_the_provisioning_uri() {
        for (issuer, email) in [
            ("My Portal", "jane+2fa@example.com"),
            ("Ärzte & Co", "a@example.com"),
        ] {
            let e = Enrollment::generate(client_id(), issuer, email).expect("enrollment");
            let png = e.qr_png().expect("png");
            let image = image::load_from_memory(&png).expect("a PNG").to_luma8();
            let mut prepared = rqrr::PreparedImage::prepare(image);
            let grids = prepared.detect_grids();
            assert_eq!(grids.len(), 1, "one QR code");
            let (_, content) = grids[0].decode().expect("decodes");
            assert_eq!(content, e.provisioning_uri());
        }
    }

    #[test]
    fn the_svg_is_a_square_black_on_white_symbol() {
        let svg = enrollment("My Portal", "jane@example.com")
            .qr_svg()
            .expect("svg");
        assert!(svg.starts_with("<?xml"), "{svg:.60}");
        assert!(svg.contains("<svg") && svg.contains("#000000") && svg.contains("#ffffff"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_uri_too_long_for_a_qr_code_is_an_error_not_a_panic() {
        let issuer = "漢".repeat(100);
        let local = "a".repeat(64);
        let domain = ["b".repeat(60), "c".repeat(60), "d".repeat(60)].join(".");
        let e = enrollment(&issuer, &format!("{local}@{domain}.com"));
        assert_eq!(e.qr_png(), Err(QrError::TooLong));
        assert_eq!(e.qr_svg(), Err(QrError::TooLong));
    }

    #[test]
    fn the_apps_current_code_verifies_and_junk_or_stale_codes_do_not() {
        // The window itself (one step either side) is eauth-core's, tested there; this checks
        // that the SDK asks for the guide's parameters and reports each refusal.
        let e = enrollment("Acme", "a@example.com");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_015);
        assert_eq!(e.verify(&e.code_at(now), now), Ok(()));
        let two_steps_ago = now - Duration::from_secs(60);
        assert_eq!(
            e.verify(&e.code_at(two_steps_ago), now),
            Err(CodeError::Wrong)
        );
        for junk in [
            "",
            "abcdef",
            "12345",
            "1234567890",
            "１２３４５６",
            "12 34 5a",
        ] {
            assert_eq!(e.verify(junk, now), Err(CodeError::NotACode), "{junk:?}");
        }
        // Eight digits are a code, but not of this 6-digit enrollment.
        assert_eq!(e.verify("12345678", now), Err(CodeError::Wrong));
        // A clock before 1970 is not a panic.
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert!(e.verify(&e.code_at(now), before_epoch).is_err());
    }
}
