//! `eauth code` against an independent implementation, OATH Toolkit's `oathtool`, for each
//! algorithm, digit count and a non-default period, at fixed times.

use std::process::Command;

use super::{Sandbox, require_tool};

/// Times across the range: RFC 6238's table, a step boundary and far future.
const TIMES: [u64; 6] = [
    59,
    1_111_111_109,
    1_234_567_890,
    1_700_000_000,
    2_000_000_000,
    20_000_000_000,
];

fn oathtool(secret: &str, algorithm: &str, digits: u8, period: u16, at: u64) -> String {
    let output = Command::new(require_tool("oathtool", "oathtool"))
        .args([
            &format!("--totp={algorithm}"),
            &format!("--digits={digits}"),
            &format!("--time-step-size={period}s"),
            "--base32",
            &format!("--now=@{at}"),
            secret,
        ])
        .output()
        .expect("oathtool runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn codes_equal_oathtools_for_every_algorithm_digit_count_and_period() {
    let sandbox = Sandbox::new();
    // 80-bit (common in the wild), 160-bit, 256-bit and 512-bit secrets, in lower case and
    // padded in places, as URIs carry them.
    let secrets = [
        "JBSWY3DPEHPK3PXP",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ====",
        "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPSAIJCEMSCKJRHFAUSUKZMFUXC6MBRGIZTINJWG44DSOR3HQ6T4PY=",
    ];
    let mut cases = Vec::new();
    for (index, secret) in secrets.iter().enumerate() {
        for algorithm in ["SHA1", "SHA256", "SHA512"] {
            for (digits, period) in [(6, 30), (8, 30), (7, 60), (6, 15)] {
                let name = format!("s{index}-{algorithm}-{digits}-{period}");
                let in_uri = if index % 2 == 0 {
                    secret.to_lowercase()
                } else {
                    secret.to_string()
                };
                sandbox.add(&format!(
                    "otpauth://totp/{name}?secret={in_uri}&algorithm={algorithm}\
                     &digits={digits}&period={period}"
                ));
                cases.push((name, *secret, algorithm, digits, period));
            }
        }
    }
    for (name, secret, algorithm, digits, period) in &cases {
        for at in TIMES {
            let shown = sandbox.run(&["code", name, "--at", &at.to_string()]).ok();
            let code = shown.stdout.split_whitespace().next().expect("a code");
            assert_eq!(
                code,
                oathtool(secret, algorithm, *digits, *period, at),
                "{name} at {at}"
            );
            assert_eq!(code.len(), usize::from(*digits), "{name}");
            let left = u64::from(*period) - at % u64::from(*period);
            assert!(
                shown.stdout.contains(&format!("  {left}s left  ")),
                "{shown:?}"
            );
        }
    }
}

#[test]
fn without_at_the_code_is_the_current_one() {
    let sandbox = Sandbox::new();
    sandbox.add("otpauth://totp/now?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    // Retry across a step boundary: the two programs may read the clock in different steps.
    let matched = (0..3).any(|_| {
        let shown = sandbox.run(&["code"]).ok();
        let ours = shown
            .stdout
            .split_whitespace()
            .next()
            .expect("a code")
            .to_owned();
        let output = Command::new(require_tool("oathtool", "oathtool"))
            .args(["--totp", "--base32", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"])
            .output()
            .expect("oathtool runs");
        ours == String::from_utf8_lossy(&output.stdout).trim()
    });
    assert!(matched, "eauth's current code differs from oathtool's");
}
