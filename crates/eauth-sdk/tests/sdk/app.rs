//! The other end of enrollment: `eauth`, the authenticator app of this workspace, scans the
//! SDK's QR code and shows the codes the SDK then accepts.

use std::time::{Duration, UNIX_EPOCH};

use eauth_sdk::{ClientId, Enrollment};

#[test]
fn the_eauth_app_scans_the_sdks_qr_code_and_shows_the_codes_the_sdk_accepts() {
    let client_id = ClientId::parse("84c2ad6c-62eb-4217-8f46-a66852e6fe92").expect("client id");
    let names = [
        ("My Portal", "jane+2fa@example.com"),
        ("Acme & Sons", "o'brien@example.com"),
        ("Ärzte-Portal #1", "user.name+tag@sub.example.co.uk"),
    ];
    for (issuer, email) in names {
        let enrollment = Enrollment::generate(client_id, issuer, email).expect("enrollment");
        let dir = tempfile::tempdir().expect("temporary directory");
        let image = dir.path().join("qr.png");
        std::fs::write(&image, enrollment.qr_png().expect("PNG")).expect("write");

        let scanned = eauth_cli::qr::read_text(&image).expect("the app reads the QR code");
        assert_eq!(scanned, enrollment.provisioning_uri());
        let provisioning = eauth_cli::uri::parse(&scanned).expect("the app accepts the URI");
        assert!(
            provisioning.warnings.is_empty(),
            "{:?}",
            provisioning.warnings
        );
        let account = provisioning.account;
        assert_eq!(account.issuer(), Some(issuer));
        assert_eq!(account.name(), email);
        assert_eq!(account.client_id(), Some(client_id));
        assert_eq!(account.email().map(|e| e.as_str()), Some(email));

        let now: u64 = 1_700_000_015;
        let shown = account.code_at(now);
        let at = UNIX_EPOCH + Duration::from_secs(now);
        assert_eq!(enrollment.verify(&shown, at), Ok(()), "{issuer} / {email}");
    }
}
