//! TOTP (RFC 6238) as the service verifies it: parameters as enrolled through `mfa/toggle`,
//! a ±1 step window for clock skew, and the step that matched returned so the caller can
//! refuse it the second time (RFC 6238 §5.2).
//!
//! The HMAC and truncation come from `totp-rs`; this module owns the rules around them.

use std::{fmt, sync::LazyLock};

use data_encoding::{BASE32_NOPAD, DecodeError, Encoding};
use secrecy::{ExposeSecret, SecretSlice};
use totp_rs::{Builder, Totp};

/// Base32 that ignores the unused low bits of the last character, as oathtool, Python and the
/// common authenticator apps do: secrets made of random base32 characters, at a length that is
/// not a multiple of 8, set them about three times in four.
static LENIENT_BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD.specification();
    spec.check_trailing_bits = false;
    spec.encoding()
        .expect("BUG: a valid variant of RFC 4648 base32")
});

/// RFC 4226 §4: shared secrets of at least 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;
/// Far beyond any real secret (SHA-512's block is 128 bytes); bounds the work a request causes.
const MAX_SECRET_BYTES: usize = 128;

/// The HMAC behind the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA-1, what nearly every authenticator app uses.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// Parses `SHA1`, `SHA256` or `SHA512`, in any case.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The spelling of the guide and of `otpauth://` URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Self::Sha1 => totp_rs::Algorithm::SHA1,
            Self::Sha256 => totp_rs::Algorithm::SHA256,
            Self::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// How codes are made for one enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    algorithm: Algorithm,
    digits: u8,
    period: u16,
}

impl Default for TotpParams {
    /// The guide's parameters, and what an `otpauth://` URI without them means: SHA-1,
    /// 6 digits, 30-second steps (the only ones every authenticator app supports).
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// Why TOTP parameters are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpParamsError {
    /// RFC 4226 §5.3 allows 6 to 8 digits.
    #[error("digits must be 6, 7 or 8")]
    Digits,
    /// Shorter steps make codes untypeable; longer ones keep a stolen code alive too long.
    #[error("period must be between 15 and 300 seconds")]
    Period,
}

impl TotpParams {
    /// Checks parameters as sent to `mfa/toggle`.
    pub fn new(algorithm: Algorithm, digits: i64, period: i64) -> Result<Self, TotpParamsError> {
        let digits = u8::try_from(digits)
            .ok()
            .filter(|d| (6..=8).contains(d))
            .ok_or(TotpParamsError::Digits)?;
        let period = u16::try_from(period)
            .ok()
            .filter(|p| (15..=300).contains(p))
            .ok_or(TotpParamsError::Period)?;
        Ok(Self {
            algorithm,
            digits,
            period,
        })
    }

    /// The HMAC.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Digits per code.
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// Seconds per time step.
    pub fn period(&self) -> u16 {
        self.period
    }

    /// The time step that `unix_seconds` falls in.
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / u64::from(self.period)
    }
}

/// A TOTP shared secret. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TotpSecret(SecretSlice<u8>);

/// Why a string is not a usable [`TotpSecret`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpSecretError {
    /// Nothing was given.
    #[error("secret is empty")]
    Empty,
    /// Not base32 (RFC 4648 §6).
    #[error("secret is not valid base32")]
    NotBase32,
    /// Fewer than 128 bits once decoded.
    #[error("secret is shorter than 128 bits (26 base32 characters)")]
    TooShort,
    /// Absurdly long.
    #[error("secret is longer than 1024 bits")]
    TooLong,
}

impl TotpSecret {
    /// Parses base32 as integrators and authenticator apps write it: any case, with or without
    /// `=` padding, and at least [`MIN_SECRET_BYTES`] once decoded.
    pub fn parse(raw: &str) -> Result<Self, TotpSecretError> {
        let secret = Self::parse_any_length(raw)?;
        if secret.0.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(TotpSecretError::TooShort);
        }
        Ok(secret)
    }

    /// Like [`parse`](Self::parse) but without the 128-bit floor, for the authenticator app:
    /// real services still issue 80-bit secrets, and an app must work with them.
    pub fn parse_any_length(raw: &str) -> Result<Self, TotpSecretError> {
        let cleaned = raw.trim().trim_end_matches('=').to_ascii_uppercase();
        if cleaned.is_empty() {
            return Err(TotpSecretError::Empty);
        }
        let bytes = LENIENT_BASE32
            .decode(cleaned.as_bytes())
            .map_err(|_: DecodeError| TotpSecretError::NotBase32)?;
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(TotpSecretError::TooLong);
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps raw secret bytes (decrypted from storage, or freshly generated).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// A fresh random 160-bit secret, the size RFC 4226 recommends.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 20];
        rand::fill(bytes.as_mut_slice());
        Self::from_bytes(bytes)
    }

    /// The raw bytes, to encrypt for storage.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Unpadded upper-case base32, as in `otpauth://` URIs.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(self.0.expose_secret())
    }

    fn totp(&self, params: TotpParams) -> Totp {
        // `build_noncompliant` because the length policy is ours (see `parse`) and the
        // digits were checked by `TotpParams`.
        Builder::new()
            .with_algorithm(params.algorithm.to_totp_rs())
            .with_digits(params.digits)
            .with_step_duration(u64::from(params.period))
            .with_skew(1)
            .with_secret(self.0.expose_secret().to_vec())
            .build_noncompliant()
    }

    /// The code for the time step that `unix_seconds` falls in.
    pub fn code_at(&self, params: TotpParams, unix_seconds: u64) -> String {
        self.totp(params).generate(unix_seconds).to_string()
    }

    /// Checks `code` against the steps just before, at and after `unix_seconds` (RFC 6238
    /// §5.2's one step of tolerated skew), comparing in constant time, and refuses a step that
    /// is not later than `last_accepted_step`: each code is good for one sign-in only.
    ///
    /// Returns the matched step, which the caller must store as the new last accepted step
    /// (atomically with the check, for the refusal to hold across processes).
    pub fn verify(
        &self,
        params: TotpParams,
        code: &TotpCode,
        unix_seconds: u64,
        last_accepted_step: Option<u64>,
    ) -> Result<u64, CodeRejected> {
        if code.0.len() != usize::from(params.digits) {
            return Err(CodeRejected::Wrong);
        }
        let step = self
            .totp(params)
            .check(&code.0, unix_seconds)
            .ok_or(CodeRejected::Wrong)?;
        match last_accepted_step {
            Some(last) if step <= last => Err(CodeRejected::Replayed),
            _ => Ok(step),
        }
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRejected {
    /// Not the code of any step in the window.
    #[error("the code is not correct")]
    Wrong,
    /// The code of a step that was already used.
    #[error("the code was already used")]
    Replayed,
}

/// A code as a user typed it: 6 to 8 ASCII digits, white space removed (people paste
/// `123 456`).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode(String);

/// Why a string is not a [`TotpCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a code is 6 to 8 digits")]
pub struct TotpCodeError;

impl TotpCode {
    /// Parses a typed code.
    pub fn parse(raw: &str) -> Result<Self, TotpCodeError> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if (6..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(TotpCodeError)
        }
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn params(algorithm: Algorithm, digits: i64, period: i64) -> TotpParams {
        TotpParams::new(algorithm, digits, period).expect("valid params")
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in rows {
            for (seed, algorithm, expected) in [
                (SEED20, Algorithm::Sha1, sha1),
                (SEED32, Algorithm::Sha256, sha256),
                (SEED64, Algorithm::Sha512, sha512),
            ] {
                let secret = TotpSecret::from_bytes(seed.to_vec());
                let p = params(algorithm, 8, 30);
                assert_eq!(secret.code_at(p, time), expected, "{algorithm:?} at {time}");
                let code = TotpCode::parse(expected).expect("code");
                assert_eq!(secret.verify(p, &code, time, None), Ok(p.step_at(time)));
            }
        }
    }

    #[test]
    fn rfc4226_appendix_d_vectors() {
        // HOTP is TOTP with a one-second step at time = counter. 15 s is our floor for
        // enrollments, so build the parameters directly.
        let p = TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 1,
        };
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        let secret = TotpSecret::from_bytes(SEED20.to_vec());
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                secret.code_at(p, counter as u64),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn codes_of_the_neighbouring_steps_are_accepted_and_no_further() {
        let secret = TotpSecret::generate();
        let p = params(Algorithm::Sha1, 6, 30);
        let now: u64 = 1_700_000_015;
        for (offset, accepted) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let at = now.checked_add_signed(offset).expect("in range");
            let code = TotpCode::parse(&secret.code_at(p, at)).expect("code");
            assert_eq!(
                secret.verify(p, &code, now, None).is_ok(),
                accepted,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_step_is_accepted_once_and_earlier_steps_never_again() {
        let secret = TotpSecret::generate();
        let p = params(Algorithm::Sha256, 6, 30);
        let now = 1_700_000_000;
        let code = TotpCode::parse(&secret.code_at(p, now)).expect("code");
        let step = secret.verify(p, &code, now, None).expect("first use");
        assert_eq!(
            secret.verify(p, &code, now, Some(step)),
            Err(CodeRejected::Replayed)
        );
        let previous = TotpCode::parse(&secret.code_at(p, now - 30)).expect("code");
        assert_eq!(
            secret.verify(p, &previous, now, Some(step)),
            Err(CodeRejected::Replayed)
        );
        let next = TotpCode::parse(&secret.code_at(p, now + 30)).expect("code");
        assert_eq!(secret.verify(p, &next, now, Some(step)), Ok(step + 1));
    }

    #[test]
    fn a_code_of_the_wrong_length_is_wrong() {
        let secret = TotpSecret::from_bytes(SEED20.to_vec());
        let p = params(Algorithm::Sha1, 8, 30);
        let six = TotpCode::parse("287082").expect("code");
        assert_eq!(secret.verify(p, &six, 59, None), Err(CodeRejected::Wrong));
    }

    #[test]
    fn secrets_parse_in_any_case_with_or_without_padding() {
        let upper = TotpSecret::parse("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").expect("valid");
        let lower = TotpSecret::parse("jbswy3dpehpk3pxpjbswy3dpehpk3pxp").expect("valid");
        assert_eq!(upper.expose_bytes(), lower.expose_bytes());
        let padded = TotpSecret::parse("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ======").expect("valid");
        assert_eq!(padded.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn secrets_with_nonzero_trailing_bits_are_accepted_as_other_apps_do() {
        // `Z` leaves 2 unused bits set; oathtool and Python's base32 decode it regardless.
        let secret = TotpSecret::parse("JBSWY3DPEHPK3PXPJBSWY3DPEZ").expect("accepted");
        assert_eq!(secret.expose_bytes().len(), 16);
    }

    #[test]
    fn bad_secrets_are_refused_with_their_reason() {
        assert_eq!(
            TotpSecret::parse("").map(|_| ()),
            Err(TotpSecretError::Empty)
        );
        assert_eq!(
            TotpSecret::parse("not base32!").map(|_| ()),
            Err(TotpSecretError::NotBase32)
        );
        assert_eq!(
            TotpSecret::parse("JBSWY3DPEHPK3PXP").map(|_| ()),
            Err(TotpSecretError::TooShort)
        );
        assert!(TotpSecret::parse_any_length("JBSWY3DPEHPK3PXP").is_ok());
        let huge = "A".repeat(300);
        assert_eq!(
            TotpSecret::parse(&huge).map(|_| ()),
            Err(TotpSecretError::TooLong)
        );
    }

    #[test]
    fn the_default_params_are_the_guides() {
        assert_eq!(
            TotpParams::default(),
            params(Algorithm::Sha1, 6, 30),
            "SHA1, 6 digits, 30 s"
        );
    }

    #[test]
    fn params_outside_the_supported_ranges_are_refused() {
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 5, 30),
            Err(TotpParamsError::Digits)
        );
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 9, 30),
            Err(TotpParamsError::Digits)
        );
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 6, 14),
            Err(TotpParamsError::Period)
        );
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 6, 301),
            Err(TotpParamsError::Period)
        );
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 6, -30),
            Err(TotpParamsError::Period)
        );
        assert_eq!(Algorithm::parse("sha512"), Some(Algorithm::Sha512));
        assert_eq!(Algorithm::parse("MD5"), None);
    }

    #[test]
    fn typed_codes_keep_only_digits_and_refuse_the_rest() {
        assert!(TotpCode::parse("123 456").is_ok());
        for bad in ["12345", "123456789", "12345a", "", "１２３４５６"] {
            assert_eq!(TotpCode::parse(bad), Err(TotpCodeError), "{bad:?}");
        }
    }
}
