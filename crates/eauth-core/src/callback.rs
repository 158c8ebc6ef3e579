//! The signed server-to-server callback (guide, API reference 2, plus a signature).
//!
//! The guide has the service call `{callback_url}?result=true&session_token=T`. The session
//! token passes through the user's browser, so anyone who knows only the password could call
//! the portal's callback with `result=true` themselves; the HMAC over timestamp, result and
//! token, keyed with the application's callback secret, is what lets the portal tell the
//! service's word from a forgery.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

use crate::{CallbackSecret, CallbackUrl};

/// Lower-case hex of HMAC-SHA256 over `"{timestamp}.{result}.{session_token}"`, keyed with the
/// secret's UTF-8 bytes exactly as shown to the integrator.
pub fn signature(
    secret: &CallbackSecret,
    timestamp: i64,
    approved: bool,
    session_token: &str,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("BUG: HMAC accepts keys of any length");
    mac.update(format!("{timestamp}.{approved}.{session_token}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The URL the service calls: the registered callback URL, its own query kept, with
/// `result`, `session_token`, `timestamp` and `signature` added.
pub fn signed_url(
    callback_url: &CallbackUrl,
    secret: &CallbackSecret,
    timestamp: i64,
    approved: bool,
    session_token: &str,
) -> Url {
    let mut url = callback_url.as_url().clone();
    url.query_pairs_mut()
        .append_pair("result", if approved { "true" } else { "false" })
        .append_pair("session_token", session_token)
        .append_pair("timestamp", &timestamp.to_string())
        .append_pair(
            "signature",
            &signature(secret, timestamp, approved, session_token),
        );
    url
}

/// How long callbacks are retried before they are given up.
pub const RETRY_FOR_SECS: i64 = 24 * 3600;

/// The wait after the `attempts`-th failed delivery: 5 s, doubling, at most an hour.
pub fn retry_delay(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(10);
    (5i64 << exponent).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let delays: Vec<i64> = (1..=12).map(retry_delay).collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        // A day of retries takes about 30 attempts, not thousands.
        let mut elapsed = 0;
        let attempts = (1..).take_while(|&n| {
            elapsed += retry_delay(n);
            elapsed < RETRY_FOR_SECS
        });
        assert!(attempts.count() < 40);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_documented_string() {
        // Independently computed: printf '1700000000.true.tok' | openssl dgst -sha256 -hmac 'ecs_secret'
        let secret = CallbackSecret::from_stored("ecs_secret".into());
        assert_eq!(
            signature(&secret, 1_700_000_000, true, "tok"),
            "ca3db2c294706f47c4f9b221d42e0d8d97c1feae0bb2065835f211bd01bf75f9"
        );
    }

    #[test]
    fn the_url_keeps_its_query_and_signs_what_it_carries() {
        let url = CallbackUrl::parse("https://portal.example.com/cb?tenant=7").expect("url");
        let secret = CallbackSecret::generate();
        let signed = signed_url(&url, &secret, 1_700_000_000, false, "a.b.c");
        let pairs: Vec<(String, String)> = signed.query_pairs().into_owned().collect();
        let expected_signature = signature(&secret, 1_700_000_000, false, "a.b.c");
        assert_eq!(
            pairs,
            [
                ("tenant", "7"),
                ("result", "false"),
                ("session_token", "a.b.c"),
                ("timestamp", "1700000000"),
                ("signature", expected_signature.as_str()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_ne!(
            expected_signature,
            signature(&secret, 1_700_000_000, true, "a.b.c")
        );
    }
}
