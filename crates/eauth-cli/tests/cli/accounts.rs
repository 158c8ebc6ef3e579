//! Adding, listing, showing and removing accounts, and where the accounts file lives.

use std::fs;

use super::{EAUTH, Run, SEED, Sandbox, mode, uri};

#[test]
fn an_account_is_added_listed_shown_and_removed() {
    let sandbox = Sandbox::new();
    let added = sandbox.add(&uri("ACME%20Co", "john.doe@email.com"));
    assert_eq!(added.stdout, "added ACME Co:john.doe@email.com\n");
    assert_eq!(added.stderr, "");

    let listed = sandbox.run(&["list"]).ok();
    assert_eq!(
        listed.stdout,
        "ISSUER   NAME                ALGORITHM  DIGITS  PERIOD\n\
         ACME Co  john.doe@email.com  SHA1       6       30s\n"
    );
    assert!(!listed.stdout.contains(SEED));

    // RFC 6238 appendix B: SHA1, 8 digits at 59 s is 94287082, so 6 digits are its last 6.
    let code = sandbox.run(&["code", "--at", "59"]).ok();
    assert_eq!(code.stdout, "287082  1s left  ACME Co:john.doe@email.com\n");

    let removed = sandbox.run(&["remove", "acme"]).ok();
    assert_eq!(removed.stdout, "removed ACME Co:john.doe@email.com\n");
    assert_eq!(sandbox.labels(), Vec::<String>::new());
    let empty = sandbox.run(&["list"]).ok();
    assert_eq!(empty.stdout, "");
    assert!(empty.stderr.contains("no accounts"), "{empty:?}");
}

#[test]
fn several_accounts_are_named_by_label_or_an_unambiguous_part() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("GitHub", "alice"));
    sandbox.add(&uri("GitHub", "alice2"));
    sandbox.add(&uri("Example", "bob@example.com"));
    assert_eq!(
        sandbox.labels(),
        ["GitHub:alice", "GitHub:alice2", "Example:bob@example.com"]
    );
    for (query, label) in [
        ("GitHub:alice", "GitHub:alice"),
        ("alice2", "GitHub:alice2"),
        ("BOB", "Example:bob@example.com"),
    ] {
        let shown = sandbox.run(&["code", query, "--at", "59"]).ok();
        assert!(shown.stdout.ends_with(&format!("  {label}\n")), "{shown:?}");
    }
    sandbox
        .run(&["code"])
        .refused(2, "there are 3 accounts: name one");
    sandbox
        .run(&["code", "github"])
        .refused(2, "\"github\" matches GitHub:alice, GitHub:alice2");
}

#[test]
fn the_guides_uri_is_added_from_standard_input_with_its_registration_data() {
    let sandbox = Sandbox::new();
    let guide_uri = format!(
        "otpauth://totp/My%20Portal:jane+2fa@example.com?secret={SEED}&issuer=My%20Portal\
         &algorithm=SHA1&digits=6&client_id=84c2ad6c-62eb-4217-8f46-a66852e6fe92\
         &email=jane+2fa@example.com\n"
    );
    let added = sandbox.run_with_stdin(&["add", "-"], &guide_uri).ok();
    assert_eq!(added.stdout, "added My Portal:jane+2fa@example.com\n");
    let stored: serde_json::Value = serde_json::from_slice(&sandbox.file_bytes()).expect("JSON");
    assert_eq!(stored["version"], 1);
    assert_eq!(
        stored["accounts"][0]["client_id"],
        "84c2ad6c-62eb-4217-8f46-a66852e6fe92"
    );
    assert_eq!(stored["accounts"][0]["email"], "jane+2fa@example.com");
}

#[test]
fn a_short_secret_is_added_with_one_warning() {
    let sandbox = Sandbox::new();
    let added = sandbox
        .run(&[
            "add",
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
        ])
        .ok();
    assert_eq!(added.stdout, "added Example:alice@google.com\n");
    assert_eq!(added.stderr.lines().count(), 1, "{added:?}");
    assert!(
        added
            .stderr
            .starts_with("eauth: warning: the secret has only 80 bits"),
        "{added:?}"
    );
}

#[test]
fn the_accounts_file_defaults_to_the_xdg_config_directory() {
    let sandbox = Sandbox::new();
    let xdg = sandbox.path("xdg");
    let home = sandbox.path("home");
    let run = |envs: &[(&str, &std::path::Path)], args: &[&str]| {
        let mut command = std::process::Command::new(EAUTH);
        command.env_clear().args(args);
        for (key, value) in envs {
            command.env(key, value);
        }
        Run::from_output(command.output().expect("eauth runs"))
    };
    run(
        &[("XDG_CONFIG_HOME", &xdg), ("HOME", &home)],
        &["add", &uri("A", "xdg")],
    )
    .ok();
    assert!(xdg.join("eauth/accounts.json").is_file());
    run(&[("HOME", &home)], &["add", &uri("A", "home")]).ok();
    assert!(home.join(".config/eauth/accounts.json").is_file());
    // --accounts wins over the environment.
    let flag = sandbox.path("flag.json");
    run(
        &[("XDG_CONFIG_HOME", &xdg)],
        &[
            "--accounts",
            flag.to_str().expect("UTF-8"),
            "add",
            &uri("A", "flag"),
        ],
    )
    .ok();
    assert!(flag.is_file());
    run(&[], &["list"]).refused(1, "cannot tell where the accounts file is");
}

#[test]
fn a_new_accounts_file_is_private_in_a_private_directory() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("A", "a"));
    assert_eq!(mode(&sandbox.accounts), 0o600);
    let dir = sandbox.accounts.parent().expect("has a directory");
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(dir.parent().expect("config")), 0o700);
    // Still private after it is rewritten.
    sandbox.add(&uri("B", "b"));
    assert_eq!(mode(&sandbox.accounts), 0o600);
    let leftovers: Vec<_> = fs::read_dir(dir)
        .expect("readable")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
