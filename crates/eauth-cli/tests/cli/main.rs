//! The `eauth` binary as a user runs it, each test with an accounts file of its own: the
//! commands, bad input, codes against `oathtool`, QR images from `qrencode` and the `qrcode`
//! crate, and the safety of the accounts file (permissions, kills, concurrent writers).

mod accounts;
mod bad_input;
mod codes;
mod file_safety;
mod qr;
mod watch;

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

const EAUTH: &str = env!("CARGO_BIN_EXE_eauth");

/// RFC 6238 appendix B's SHA1 seed, a 160-bit secret.
const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A URI for an account with a 160-bit secret (no short-secret warning).
fn uri(issuer: &str, name: &str) -> String {
    format!("otpauth://totp/{issuer}:{name}?secret={SEED}&issuer={issuer}")
}

/// A temporary directory with a path for the accounts file that does not exist yet.
struct Sandbox {
    dir: tempfile::TempDir,
    accounts: PathBuf,
}

/// What a run of `eauth` did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    /// Asserts success and returns the run.
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    /// Asserts the contract for refused input: exit code `code`, nothing on stdout, exactly
    /// one line on stderr, which contains `expected`.
    #[track_caller]
    fn refused(self, code: i32, expected: &str) -> Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:#?}");
        assert!(self.stderr.ends_with('\n'), "{self:#?}");
        assert!(self.stderr.starts_with("eauth: "), "{self:#?}");
        assert!(self.stderr.contains(expected), "{expected:?} in {self:#?}");
        self
    }
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let accounts = dir
            .path()
            .join("config")
            .join("eauth")
            .join("accounts.json");
        Self { dir, accounts }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `eauth` with only `PATH` and the accounts file in its environment.
    fn command(&self) -> Command {
        let mut command = Command::new(EAUTH);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("EAUTH_ACCOUNTS", &self.accounts)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command().args(args).output().expect("eauth runs"))
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eauth starts");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())
            .expect("input written");
        Run::from_output(child.wait_with_output().expect("eauth runs"))
    }

    fn add(&self, uri: &str) -> Run {
        self.run(&["add", uri]).ok()
    }

    /// The labels `eauth list` shows, as `issuer:name`.
    fn labels(&self) -> Vec<String> {
        let listed = self.run(&["list"]).ok();
        listed
            .stdout
            .lines()
            .skip(1)
            .map(|line| {
                let cells: Vec<&str> = line.split("  ").filter(|c| !c.is_empty()).collect();
                format!("{}:{}", cells[0].trim(), cells[1].trim())
            })
            .collect()
    }

    /// The accounts file's bytes, empty when it does not exist.
    fn file_bytes(&self) -> Vec<u8> {
        fs::read(&self.accounts).unwrap_or_default()
    }
}

/// The path of a tool from Debian that a test needs. Missing, the test fails rather than
/// passing without comparing anything: `scripts/test.sh` installs the tools.
fn require_tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/test.sh, or apt-get install {package}")
        })
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}
