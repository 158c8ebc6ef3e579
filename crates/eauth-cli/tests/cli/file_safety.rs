//! The accounts file stays private and whole: files others can read are refused, a write
//! killed at any moment loses nothing, and concurrent writers lose no account.

use std::{
    fs,
    hash::{BuildHasher, RandomState},
    os::unix::fs::PermissionsExt,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{Sandbox, uri};

const PAUSE_HOOK: &str = eauth_cli::store::PAUSE_BEFORE_RENAME_ENV;

#[test]
fn a_file_others_can_access_is_refused_with_the_fix() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("A", "a"));
    let path = sandbox.accounts.display().to_string();
    let add_b = uri("B", "b");
    let commands: [&[&str]; 4] = [
        &["list"],
        &["code", "--at", "59"],
        &["add", &add_b],
        &["remove", "a"],
    ];
    for mode in [0o640, 0o604, 0o620, 0o666] {
        fs::set_permissions(&sandbox.accounts, fs::Permissions::from_mode(mode)).expect("chmod");
        let before = sandbox.file_bytes();
        for args in commands {
            sandbox
                .run(args)
                .refused(1, &format!("fix it with `chmod 600 {path}`"));
        }
        assert_eq!(sandbox.file_bytes(), before);
        assert_eq!(
            fs::metadata(&sandbox.accounts)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777,
            mode,
            "eauth does not change permissions behind the user's back"
        );
    }
    fs::set_permissions(&sandbox.accounts, fs::Permissions::from_mode(0o600)).expect("chmod");
    sandbox.run(&["list"]).ok();
}

#[test]
fn a_damaged_file_is_refused_and_left_for_the_user_to_repair() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("A", "a"));
    let mut damaged = sandbox.file_bytes();
    damaged.truncate(damaged.len() / 2);
    fs::write(&sandbox.accounts, &damaged).expect("written");
    sandbox.run(&["list"]).refused(1, "is damaged");
    sandbox
        .run(&["add", &uri("B", "b")])
        .refused(1, "is damaged");
    assert_eq!(sandbox.file_bytes(), damaged);
}

fn spawn_add(sandbox: &Sandbox, uri: &str, pause_signal: Option<&std::path::Path>) -> Child {
    let mut command = sandbox.command();
    command
        .args(["add", uri])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(signal) = pause_signal {
        command.env(PAUSE_HOOK, signal);
    }
    command.spawn().expect("eauth starts")
}

fn temporary_files(sandbox: &Sandbox) -> Vec<String> {
    fs::read_dir(sandbox.accounts.parent().expect("dir"))
        .expect("readable")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[test]
fn killing_add_after_the_new_file_is_written_but_before_the_rename_loses_nothing() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("A", "a"));
    let before = sandbox.file_bytes();
    let signal = sandbox.path("paused");

    let mut child = spawn_add(&sandbox, &uri("B", "b"), Some(&signal));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !signal.exists() {
        assert!(
            Instant::now() < deadline,
            "eauth add never reached the rename"
        );
        assert!(
            child.try_wait().expect("waits").is_none(),
            "eauth add ended early"
        );
        thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    // The new accounts were complete on disk, in the temporary file only.
    assert_eq!(temporary_files(&sandbox).len(), 1);
    assert_eq!(sandbox.file_bytes(), before);
    assert_eq!(sandbox.labels(), ["A:a"]);

    // The next change cleans up the killed writer's file, which holds secrets.
    sandbox.add(&uri("C", "c"));
    assert_eq!(sandbox.labels(), ["A:a", "C:c"]);
    assert_eq!(temporary_files(&sandbox), Vec::<String>::new());
}

/// A random number below `bound`, without a dependency: `RandomState` is seeded randomly.
fn random_below(bound: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % bound
}

#[test]
fn killing_add_at_random_moments_always_leaves_a_whole_file() {
    let sandbox = Sandbox::new();
    // Kills spread over twice the time an add takes here (fsync makes it vary a lot between
    // machines), so that they land before, during and after the write.
    let started = Instant::now();
    sandbox.add(&uri("Seed", "first"));
    let window = u64::try_from(started.elapsed().as_micros() * 2)
        .expect("an add takes less than a lifetime")
        .max(2_000);
    let mut present = vec!["Seed:first".to_owned()];
    let (mut killed, mut finished) = (0, 0);
    for round in 0..40 {
        let label = format!("R{round}:user{round}");
        let mut child = spawn_add(
            &sandbox,
            &uri(&format!("R{round}"), &format!("user{round}")),
            None,
        );
        // The first round is killed at once, so at least one kill lands before the write.
        let delay = if round == 0 { 0 } else { random_below(window) };
        thread::sleep(Duration::from_micros(delay));
        match child.try_wait().expect("waits") {
            Some(status) => {
                assert!(status.success(), "round {round}: {status:?}");
                finished += 1;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                killed += 1;
            }
        }
        // Whole and parseable every time, with every account of before, and the new one
        // either entirely there or not at all.
        let labels = sandbox.labels();
        assert_eq!(labels[..present.len()], present[..], "round {round}");
        match &labels[present.len()..] {
            [] => {}
            [new] if *new == label => present.push(label),
            other => panic!("round {round}: unexpected accounts {other:?}"),
        }
    }
    assert!(killed > 0, "no add was killed ({finished} finished)");
    eprintln!("{killed} adds killed, {finished} finished, kills within {window} µs");
}

#[test]
fn concurrent_adds_lose_no_account() {
    let sandbox = Sandbox::new();
    let children: Vec<Child> = (0..8)
        .map(|i| spawn_add(&sandbox, &uri(&format!("P{i}"), "user"), None))
        .collect();
    for mut child in children {
        assert!(child.wait().expect("waits").success());
    }
    let mut labels = sandbox.labels();
    labels.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("P{i}:user")).collect();
    assert_eq!(labels, expected);
}

#[test]
fn a_symbolic_link_to_an_accounts_file_is_kept() {
    let sandbox = Sandbox::new();
    let real = sandbox.path("dotfiles/accounts.json");
    sandbox
        .run(&[
            "--accounts",
            real.to_str().expect("UTF-8"),
            "add",
            &uri("A", "a"),
        ])
        .ok();
    fs::create_dir_all(sandbox.accounts.parent().expect("dir")).expect("created");
    std::os::unix::fs::symlink(&real, &sandbox.accounts).expect("linked");
    sandbox.add(&uri("B", "b"));
    assert!(
        fs::symlink_metadata(&sandbox.accounts)
            .expect("exists")
            .file_type()
            .is_symlink()
    );
    assert_eq!(sandbox.labels(), ["A:a", "B:b"]);
    assert!(
        fs::read_to_string(&real)
            .expect("real file")
            .contains("\"name\": \"b\"")
    );
}
