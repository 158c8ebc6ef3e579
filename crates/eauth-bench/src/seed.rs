//! The benchmark's users: `user{i}@bench.example.com`, each with a TOTP secret derived from
//! its number (so the load generator can compute its codes without keeping a million secrets),
//! sealed with the deployment's vault exactly as `mfa/toggle` seals it, and stored with the
//! store's batched [`upsert_enrollments`](eauth_store::Store::upsert_enrollments).

use anyhow::Context;
use eauth_core::{ClientId, Email, MasterKey, TotpParams, TotpSecret, Vault};
use eauth_store::{NewEnrollment, Store};

/// Users per transaction: large enough that commits are rare, small enough that a batch of
/// sealed secrets stays a few megabytes.
const BATCH: u64 = 20_000;

/// The email of user `i`.
pub(crate) fn email(i: u64) -> String {
    format!("user{i}@bench.example.com")
}

/// The TOTP secret of user `i`: 160 bits from a fixed mix of `i`. Not secret at all, which is
/// fine for a benchmark.
pub(crate) fn secret(i: u64) -> TotpSecret {
    let mut state = i ^ 0x005E_ED0F_E4A7_BE4C;
    let bytes = (0..3)
        .flat_map(|_| crate::load::splitmix64(&mut state).to_le_bytes())
        .take(20)
        .collect();
    TotpSecret::from_bytes(bytes)
}

/// The parameters every user is enrolled with (the guide's: SHA-1, 6 digits, 30 s).
pub(crate) fn params() -> TotpParams {
    TotpParams::default()
}

/// Enrolls users `0..users` of `client_id` in the database at `url`.
pub(crate) async fn enroll(
    url: &str,
    master_key: &MasterKey,
    client_id: &str,
    users: u64,
) -> anyhow::Result<()> {
    let client_id = ClientId::parse(client_id).context("client_id")?;
    let vault = Vault::new(master_key);
    let store = Store::connect(url)
        .await
        .context("cannot open the database")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut first = 0;
    while first < users {
        let last = (first + BATCH).min(users);
        let batch = (first..last)
            .map(|i| {
                let email = Email::parse(&email(i)).context("email")?;
                let sealed_secret = vault.seal_totp_secret(client_id, &email, &secret(i));
                Ok(NewEnrollment {
                    client_id,
                    email,
                    sealed_secret,
                    params: params(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store
            .upsert_enrollments(&batch, now)
            .await
            .context("cannot store enrollments")?;
        first = last;
    }
    store.close().await;
    Ok(())
}
