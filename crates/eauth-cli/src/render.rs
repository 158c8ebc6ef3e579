//! What `eauth` prints: the account table, a code with its time left, and the frames of the
//! live view with their time bars. Pure functions of the accounts and `now`; no terminal here.

use crate::account::Account;

/// Width of the live view's time bar, in characters.
pub const BAR_WIDTH: u64 = 20;

/// `492039  21s left  GitHub:alice`: the code first, so that `eauth code x | cut -d' ' -f1`
/// and a double-click both get just the code.
pub fn code_line(account: &Account, now: u64) -> String {
    format!(
        "{}  {}s left  {}",
        account.code_at(now),
        account.seconds_left(now),
        account.label()
    )
}

/// The accounts as a table, one line each, secrets never shown.
pub fn account_table(accounts: &[Account]) -> Vec<String> {
    let header = ["ISSUER", "NAME", "ALGORITHM", "DIGITS", "PERIOD"].map(str::to_owned);
    let rows = accounts.iter().map(|account| {
        let params = account.params();
        [
            account.issuer().unwrap_or("-").to_owned(),
            account.name().to_owned(),
            params.algorithm().as_str().to_owned(),
            params.digits().to_string(),
            format!("{}s", params.period()),
        ]
    });
    table(std::iter::once(header).chain(rows))
}

/// One frame of `eauth code --watch`: a title line, a blank line, then per account its label,
/// code, a bar of the time left in its own period, and the seconds.
pub fn watch_frame(accounts: &[Account], now: u64) -> Vec<String> {
    let rows = accounts.iter().map(|account| {
        let left = account.seconds_left(now);
        [
            account.label(),
            account.code_at(now),
            bar(left, account.params().period().into()),
            format!("{left:>3}s"),
        ]
    });
    let mut lines = vec![
        "eauth: live codes (Ctrl-C to quit)".to_owned(),
        String::new(),
    ];
    lines.extend(table(rows));
    lines
}

/// `[██████████░░░░░░░░░░]`: full at the start of a period, one block left in its last
/// second; rounding up so a code about to expire still shows a sliver.
pub fn bar(seconds_left: u64, period: u64) -> String {
    let filled = (seconds_left * BAR_WIDTH)
        .div_ceil(period.max(1))
        .min(BAR_WIDTH);
    let filled = usize::try_from(filled).expect("BUG: the bar is at most BAR_WIDTH wide");
    let empty = usize::try_from(BAR_WIDTH).expect("BUG: BAR_WIDTH is small") - filled;
    format!("[{}{}]", "█".repeat(filled), "░".repeat(empty))
}

/// Columns padded to their widest cell (in characters, not bytes: names are often not ASCII),
/// two spaces apart, no trailing spaces.
fn table<const N: usize>(rows: impl Iterator<Item = [String; N]>) -> Vec<String> {
    let rows: Vec<[String; N]> = rows.collect();
    let mut widths = [0usize; N];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri;

    fn account(uri: &str) -> Account {
        uri::parse(uri).expect("valid URI").account
    }

    /// RFC 6238 appendix B's SHA1 seed, so the codes below are the RFC's.
    const RFC_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn a_code_line_shows_code_time_left_and_label() {
        let a = account(&format!(
            "otpauth://totp/Example:alice?secret={RFC_SEED}&digits=8"
        ));
        assert_eq!(code_line(&a, 59), "94287082  1s left  Example:alice");
        assert_eq!(
            code_line(&a, 1_111_111_111),
            "14050471  29s left  Example:alice"
        );
    }

    #[test]
    fn the_account_table_aligns_columns_and_shows_no_secret() {
        let accounts = [
            account(&format!(
                "otpauth://totp/Soci%C3%A9t%C3%A9:z%C3%B6e?secret={RFC_SEED}"
            )),
            account(&format!(
                "otpauth://totp/bob@example.com?secret={RFC_SEED}&algorithm=SHA512&digits=8&period=60"
            )),
        ];
        assert_eq!(
            account_table(&accounts),
            [
                "ISSUER   NAME             ALGORITHM  DIGITS  PERIOD",
                "Société  zöe              SHA1       6       30s",
                "-        bob@example.com  SHA512     8       60s",
            ]
        );
        assert!(!account_table(&accounts).concat().contains(RFC_SEED));
    }

    #[test]
    fn the_bar_shrinks_with_the_time_left() {
        assert_eq!(bar(30, 30), format!("[{}]", "█".repeat(20)));
        assert_eq!(
            bar(15, 30),
            format!("[{}{}]", "█".repeat(10), "░".repeat(10))
        );
        assert_eq!(bar(1, 30), format!("[█{}]", "░".repeat(19)));
        assert_eq!(bar(1, 300), format!("[█{}]", "░".repeat(19)));
        assert_eq!(bar(0, 30), format!("[{}]", "░".repeat(20)));
    }

    #[test]
    fn a_watch_frame_has_a_line_per_account_with_its_own_period() {
        let accounts = [
            account(&format!("otpauth://totp/A:a?secret={RFC_SEED}&digits=8")),
            account(&format!(
                "otpauth://totp/Long%20Issuer:b?secret={RFC_SEED}&period=60"
            )),
        ];
        let frame = watch_frame(&accounts, 59);
        assert_eq!(frame[0], "eauth: live codes (Ctrl-C to quit)");
        assert_eq!(frame[1], "");
        assert_eq!(
            frame[2],
            format!("A:a            94287082  [█{}]    1s", "░".repeat(19))
        );
        assert_eq!(
            frame[3],
            format!(
                "Long Issuer:b  {}    [█{}]    1s",
                accounts[1].code_at(59),
                "░".repeat(19)
            )
        );
        assert_eq!(frame.len(), 4);
    }
}
