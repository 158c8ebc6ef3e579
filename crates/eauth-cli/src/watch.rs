//! The live view of `eauth code --watch`: redraws the codes at each second until told to
//! stop, and leaves the terminal as it found it however it ends.
//!
//! On a terminal it draws on the alternate screen with the cursor hidden (so the codes vanish
//! from the scrollback when it ends); into a pipe it writes one plain frame per second.

use std::{
    io::{self, Write},
    sync::mpsc::{Receiver, RecvTimeoutError},
    time::Duration,
};

use crate::{account::Account, render};

const ENTER_ALTERNATE_SCREEN: &str = "\x1b[?1049h";
const LEAVE_ALTERNATE_SCREEN: &str = "\x1b[?1049l";
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";
const HOME: &str = "\x1b[H";
const CLEAR_TO_END_OF_LINE: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";

/// Shows live codes for `accounts` on `out` until `stop` receives a message or its sender is
/// dropped. `terminal` says whether `out` is a terminal (escape sequences) or not (plain
/// frames); `clock` gives the time since the Unix epoch. A reader that goes away
/// (`eauth code --watch | head`) ends it quietly.
pub fn run(
    accounts: &[Account],
    out: &mut impl Write,
    terminal: bool,
    stop: &Receiver<()>,
    clock: impl FnMut() -> Duration,
) -> io::Result<()> {
    match draw_until_stopped(accounts, out, terminal, stop, clock) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        outcome => outcome,
    }
}

fn draw_until_stopped(
    accounts: &[Account],
    out: &mut impl Write,
    terminal: bool,
    stop: &Receiver<()>,
    mut clock: impl FnMut() -> Duration,
) -> io::Result<()> {
    let mut screen = Screen::new(out, terminal)?;
    loop {
        let now = clock();
        screen.draw(&render::watch_frame(accounts, now.as_secs()))?;
        // Wake at the next whole second, when the countdown changes, rather than a second
        // after this frame: otherwise the display drifts behind the real code changes.
        let until_next_second =
            Duration::from_secs(1) - Duration::from_nanos(now.subsec_nanos().into());
        match stop.recv_timeout(until_next_second) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return screen.restore(),
        }
    }
}

/// The terminal state while the view runs; dropping it restores the terminal even when
/// drawing fails half-way or the code panics.
struct Screen<'a, W: Write> {
    out: &'a mut W,
    terminal: bool,
    restored: bool,
}

impl<'a, W: Write> Screen<'a, W> {
    fn new(out: &'a mut W, terminal: bool) -> io::Result<Self> {
        let screen = Self {
            out,
            terminal,
            restored: false,
        };
        if terminal {
            write!(screen.out, "{ENTER_ALTERNATE_SCREEN}{HIDE_CURSOR}")?;
        }
        Ok(screen)
    }

    fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        if self.terminal {
            // Overwrite in place rather than clear the whole screen first: no flicker.
            write!(self.out, "{HOME}")?;
            for line in lines {
                write!(self.out, "{line}{CLEAR_TO_END_OF_LINE}\r\n")?;
            }
            write!(self.out, "{CLEAR_BELOW}")?;
        } else {
            for line in lines {
                writeln!(self.out, "{line}")?;
            }
            writeln!(self.out)?;
        }
        self.out.flush()
    }

    fn restore(&mut self) -> io::Result<()> {
        self.restored = true;
        if self.terminal {
            write!(self.out, "{SHOW_CURSOR}{LEAVE_ALTERNATE_SCREEN}")?;
        }
        self.out.flush()
    }
}

impl<W: Write> Drop for Screen<'_, W> {
    fn drop(&mut self) {
        if !self.restored {
            // Nothing more can be done about a failure here; the error that brought us here
            // is already on its way to the user.
            let _ = self.restore();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn clock() -> Duration {
        Duration::from_secs(59)
    }

    fn accounts() -> Vec<Account> {
        vec![
            crate::uri::parse("otpauth://totp/A:a?secret=JBSWY3DPEHPK3PXP")
                .expect("valid")
                .account,
        ]
    }

    #[test]
    fn on_a_terminal_the_screen_is_restored_when_stopped() {
        let (stop, stopped) = mpsc::channel();
        stop.send(()).expect("receiver alive");
        let mut out = Vec::new();
        run(&accounts(), &mut out, true, &stopped, clock).expect("runs");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with(ENTER_ALTERNATE_SCREEN), "{text:?}");
        assert!(text.contains("A:a"), "{text:?}");
        assert!(
            text.ends_with(&format!("{SHOW_CURSOR}{LEAVE_ALTERNATE_SCREEN}")),
            "{text:?}"
        );
    }

    #[test]
    fn into_a_pipe_frames_are_plain_text() {
        let (stop, stopped) = mpsc::channel::<()>();
        drop(stop);
        let mut out = Vec::new();
        run(&accounts(), &mut out, false, &stopped, clock).expect("runs");
        let text = String::from_utf8(out).expect("UTF-8");
        let frame = render::watch_frame(&accounts(), 59).join("\n");
        assert_eq!(text, format!("{frame}\n\n"));
    }

    #[test]
    fn a_frame_is_drawn_at_each_second_of_the_clock() {
        let (stop, stopped) = mpsc::channel();
        let mut ticks = 0;
        // Each reading is a nanosecond before the next second, so the view waits for no
        // real time; the third reading also asks it to stop.
        let clock = || {
            ticks += 1;
            if ticks == 3 {
                stop.send(()).expect("receiver alive");
            }
            Duration::new(58 + ticks, 999_999_999)
        };
        let mut out = Vec::new();
        run(&accounts(), &mut out, false, &stopped, clock).expect("runs");
        let text = String::from_utf8(out).expect("UTF-8");
        let expected: String = [59, 60, 61]
            .map(|t| render::watch_frame(&accounts(), t).join("\n") + "\n\n")
            .concat();
        assert_eq!(text, expected);
    }

    /// Fails every write after the first `budget` bytes, remembering what it was asked to
    /// write all the same.
    struct Failing {
        attempted: Vec<u8>,
        budget: usize,
        kind: io::ErrorKind,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let accepted = self.attempted.len() < self.budget;
            self.attempted.extend_from_slice(buf);
            if accepted {
                Ok(buf.len())
            } else {
                Err(io::Error::from(self.kind))
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_draw_still_tries_to_restore_the_terminal_and_reports_the_error() {
        let (_stop, stopped) = mpsc::channel::<()>();
        let mut out = Failing {
            attempted: Vec::new(),
            budget: ENTER_ALTERNATE_SCREEN.len() + HIDE_CURSOR.len(),
            kind: io::ErrorKind::Other,
        };
        let error = run(&accounts(), &mut out, true, &stopped, clock).expect_err("fails");
        assert_eq!(error.kind(), io::ErrorKind::Other);
        let attempted = String::from_utf8(out.attempted).expect("UTF-8");
        assert!(attempted.ends_with(SHOW_CURSOR), "{attempted:?}");
    }

    #[test]
    fn a_reader_going_away_ends_the_view_quietly() {
        let (_stop, stopped) = mpsc::channel::<()>();
        let mut out = Failing {
            attempted: Vec::new(),
            budget: 0,
            kind: io::ErrorKind::BrokenPipe,
        };
        run(&accounts(), &mut out, false, &stopped, clock)
            .expect("a closed pipe is the end, not an error");
    }
}
