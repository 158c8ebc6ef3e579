//! Every kind of bad input: one line on stderr saying what is wrong, exit code 2, and the
//! accounts file byte for byte as it was.

use std::fs;

use image::{GrayImage, Luma};

use super::{SEED, Sandbox, uri};

#[test]
fn bad_input_exits_2_with_one_line_and_leaves_the_accounts_file_untouched() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("Example", "alice@google.com"));
    let before = sandbox.file_bytes();
    assert!(!before.is_empty());

    let not_an_image = sandbox.path("notes.png");
    fs::write(&not_an_image, "this is text, not a PNG").expect("written");
    let blank = sandbox.path("blank.png");
    GrayImage::from_pixel(300, 200, Luma([255]))
        .save(&blank)
        .expect("saved");
    let link_qr = sandbox.path("link.png");
    qrcode::QrCode::new(b"https://example.com/enroll")
        .expect("encodes")
        .render::<Luma<u8>>()
        .build()
        .save(&link_qr)
        .expect("saved");
    let path = |p: &std::path::Path| p.to_str().expect("UTF-8").to_owned();

    let s = format!("secret={SEED}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["add".into(), "JBSWY3DPEHPK3PXP".into()], "not a URI"),
        (
            vec!["add".into(), "https://example.com/".into()],
            "not an otpauth:// URI",
        ),
        (
            vec![
                "add".into(),
                format!("otpauth://hotp/Example:a?{s}&counter=0"),
            ],
            "HOTP (counter-based) accounts are not supported",
        ),
        (
            vec!["add".into(), format!("otpauth://totp/Example:?{s}")],
            "has no account name",
        ),
        (
            vec![
                "add".into(),
                "otpauth://totp/Example:a?issuer=Example".into(),
            ],
            "has no secret",
        ),
        (
            vec!["add".into(), "otpauth://totp/Example:a?secret=".into()],
            "secret is empty",
        ),
        (
            vec!["add".into(), "otpauth://totp/Example:a?secret=0189!".into()],
            "secret is not valid base32",
        ),
        (
            vec![
                "add".into(),
                format!("otpauth://totp/Example:a?{s}&algorithm=MD5"),
            ],
            "unsupported algorithm \"MD5\"",
        ),
        (
            vec![
                "add".into(),
                format!("otpauth://totp/Example:a?{s}&digits=10"),
            ],
            "unsupported digits \"10\"",
        ),
        (
            vec![
                "add".into(),
                format!("otpauth://totp/Example:a?{s}&period=5"),
            ],
            "unsupported period \"5\"",
        ),
        (
            vec!["add".into(), uri("Example", "alice@google.com")],
            "Example:alice@google.com is already an account",
        ),
        (
            vec![
                "add".into(),
                "--qr".into(),
                path(&sandbox.path("missing.png")),
            ],
            "cannot read",
        ),
        (
            vec!["add".into(), "--qr".into(), path(&not_an_image)],
            "is not a readable PNG or JPEG image",
        ),
        (
            vec!["add".into(), "--qr".into(), path(&blank)],
            "no QR code found",
        ),
        (
            vec!["add".into(), "--qr".into(), path(&link_qr)],
            "not an otpauth:// URI",
        ),
        (
            vec!["code".into(), "nobody".into()],
            "no account matches \"nobody\"",
        ),
        (
            vec!["remove".into(), "nobody".into()],
            "no account matches \"nobody\"",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sandbox.run(&args).refused(2, expected);
        assert_eq!(sandbox.file_bytes(), before, "after {args:?}");
    }

    sandbox
        .run_with_stdin(
            &["add", "-"],
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=4\n",
        )
        .refused(2, "unsupported digits");
    assert_eq!(sandbox.file_bytes(), before);
}

#[test]
fn bad_input_creates_no_accounts_file() {
    let sandbox = Sandbox::new();
    sandbox
        .run(&["add", "otpauth://totp/a?secret=!"])
        .refused(2, "base32");
    assert!(!sandbox.accounts.exists());
    assert!(!sandbox.accounts.parent().expect("dir").exists());
}

#[test]
fn refusals_never_print_the_secret() {
    let sandbox = Sandbox::new();
    for uri in [
        format!("otpauth://totp/a?secret={SEED}&algorithm=SHA3"),
        format!("otpauth://hotp/a?secret={SEED}"),
        format!("otpauth://totp/a?secret={SEED}1"),
    ] {
        let refused = sandbox.run(&["add", &uri]);
        assert_eq!(refused.code, Some(2), "{refused:?}");
        assert!(!refused.stderr.contains(SEED), "{refused:?}");
    }
}
