//! `eauth code --watch` into a pipe: a frame each second, and Ctrl-C (SIGINT) ends it cleanly.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{Sandbox, uri};

const TITLE: &str = "eauth: live codes (Ctrl-C to quit)";

/// The rows of the next `frames` frames of a running `--watch` into a pipe, each frame exactly
/// its title, a blank line, `rows` rows and a blank line.
fn read_frames(reader: &mut impl BufRead, frames: usize, rows: usize) -> Vec<Vec<String>> {
    let mut next_line = || {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("readable") > 0,
            "output ended"
        );
        line.trim_end_matches('\n').to_owned()
    };
    (0..frames)
        .map(|_| {
            assert_eq!(next_line(), TITLE);
            assert_eq!(next_line(), "");
            let frame: Vec<String> = (0..rows).map(|_| next_line()).collect();
            assert_eq!(next_line(), "", "after {frame:?}");
            frame
        })
        .collect()
}

fn assert_row(row: &str, label: &str) {
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[0], label, "{row}");
    assert!(
        cells[1].len() == 6 && cells[1].bytes().all(|b| b.is_ascii_digit()),
        "{row}"
    );
    assert!(
        cells[2].starts_with('[') && cells[2].ends_with(']'),
        "{row}"
    );
    assert_eq!(cells[2].chars().count(), 22, "{row}");
    assert!(cells[3].ends_with('s'), "{row}");
}

#[test]
fn watch_redraws_every_second_and_ends_cleanly_on_sigint() {
    let sandbox = Sandbox::new();
    sandbox.add(&uri("A", "alice"));
    sandbox.add(&uri("B", "bob"));
    let mut child = sandbox
        .command()
        .args(["code", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eauth starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let started = Instant::now();
    let frames = read_frames(&mut stdout, 3, 2);
    // Three frames span at least the two redraws between them: about two seconds.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{frames:?}"
    );
    for frame in &frames {
        assert_row(&frame[0], "A:alice");
        assert_row(&frame[1], "B:bob");
    }
    assert!(
        !frames.concat().concat().contains('\x1b'),
        "no escapes into a pipe"
    );

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "eauth --watch ignored SIGINT");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    let output = child.wait_with_output().expect("reaped");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn watch_shows_only_the_named_account_and_needs_one() {
    let sandbox = Sandbox::new();
    sandbox
        .run(&["code", "--watch"])
        .refused(2, "there are no accounts yet");
    sandbox.add(&uri("A", "alice"));
    sandbox.add(&uri("B", "bob"));
    sandbox
        .run(&["code", "--watch", "carol"])
        .refused(2, "no account matches \"carol\"");

    let mut child = sandbox
        .command()
        .args(["code", "--watch", "bob"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("eauth starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let frames = read_frames(&mut stdout, 1, 1);
    assert_row(&frames[0][0], "B:bob");
    child.kill().expect("killed");
    child.wait().expect("reaped");
}
