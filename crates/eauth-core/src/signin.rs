//! The rules of a sign-in attempt: how many wrong codes a session and an enrollment may take,
//! and what each attempt does (NIST SP 800-63B §5.2.2, RFC 6238 §5.2).
//!
//! A pure function of the stored state, the time and the code's check, so that the store can
//! run it inside the transaction that holds the enrollment's row: concurrent attempts, in one
//! process or several, see each other's effects.

use crate::totp::CodeRejected;

/// Wrong codes a session takes; the last one ends it as REJECT.
pub const SESSION_ATTEMPTS: u32 = 5;
/// Consecutive failures of an enrollment after which each further attempt must wait.
pub const BACKOFF_AFTER: u32 = 10;
/// Consecutive failures at which the enrollment is locked until it is enabled again.
pub const LOCK_AT: u32 = 100;
/// The longest wait between attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

/// What the store knows when an attempt arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptState {
    /// Wrong codes in this session so far.
    pub session_failures: u32,
    /// Wrong codes for this enrollment since its last success, across sessions.
    pub enrollment_failures: u32,
    /// When the last of those happened.
    pub last_failure_at: Option<i64>,
    /// Whether the enrollment is locked.
    pub locked: bool,
    /// The last accepted time step.
    pub last_used_step: Option<u64>,
}

/// What an attempt comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The code is right: store `step` as used and finish the session as approved.
    Approved {
        /// The accepted time step.
        step: u64,
    },
    /// A wrong (or already used) code; the session goes on.
    Wrong {
        /// Why it was refused.
        reason: CodeRejected,
        /// Codes the session still takes.
        attempts_left: u32,
        /// Whether the enrollment reached the lock with this failure.
        locked: bool,
    },
    /// The last wrong code this session takes: it ends as REJECT.
    Exhausted {
        /// Whether the enrollment reached the lock with this failure.
        locked: bool,
    },
    /// Too many failures lately: no code is checked before `retry_at`.
    Throttled {
        /// Unix seconds.
        retry_at: i64,
    },
    /// The enrollment is locked; no code is checked.
    Locked,
}

impl Verdict {
    /// Whether the verdict counts a failure against the session and the enrollment.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Wrong { .. } | Self::Exhausted { .. })
    }
}

/// When an enrollment with `failures` consecutive failures, the last at `last_failure_at`,
/// may try again: 1 s after the tenth, doubling with each further one, at most an hour.
pub fn retry_at(failures: u32, last_failure_at: Option<i64>) -> Option<i64> {
    if failures < BACKOFF_AFTER {
        return None;
    }
    let exponent = (failures - BACKOFF_AFTER).min(12);
    let wait = (1i64 << exponent).min(MAX_BACKOFF_SECS);
    last_failure_at.map(|at| at + wait)
}

/// Judges one attempt at `now`. `check` verifies the code against the last used step; it is
/// called only when the enrollment may be tried at all.
pub fn judge(
    state: AttemptState,
    now: i64,
    check: impl FnOnce(Option<u64>) -> Result<u64, CodeRejected>,
) -> Verdict {
    if state.locked {
        return Verdict::Locked;
    }
    if let Some(retry_at) = retry_at(state.enrollment_failures, state.last_failure_at)
        && now < retry_at
    {
        return Verdict::Throttled { retry_at };
    }
    match check(state.last_used_step) {
        Ok(step) => Verdict::Approved { step },
        Err(reason) => {
            let locked = state.enrollment_failures + 1 >= LOCK_AT;
            let used = state.session_failures + 1;
            if used >= SESSION_ATTEMPTS {
                Verdict::Exhausted { locked }
            } else {
                Verdict::Wrong {
                    reason,
                    attempts_left: SESSION_ATTEMPTS - used,
                    locked,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn state(session_failures: u32, enrollment_failures: u32) -> AttemptState {
        AttemptState {
            session_failures,
            enrollment_failures,
            last_failure_at: Some(NOW - 1),
            locked: false,
            last_used_step: Some(7),
        }
    }

    fn wrong(_: Option<u64>) -> Result<u64, CodeRejected> {
        Err(CodeRejected::Wrong)
    }

    #[test]
    fn a_right_code_is_approved_with_its_step_and_sees_the_last_used_step() {
        let verdict = judge(state(4, 9), NOW, |last| {
            assert_eq!(last, Some(7));
            Ok(8)
        });
        assert_eq!(verdict, Verdict::Approved { step: 8 });
    }

    #[test]
    fn the_fifth_wrong_code_of_a_session_exhausts_it() {
        let attempts: Vec<_> = (0..5)
            .map(|used| judge(state(used, 0), NOW, wrong))
            .collect();
        assert_eq!(
            attempts,
            [4, 3, 2, 1]
                .map(|left| Verdict::Wrong {
                    reason: CodeRejected::Wrong,
                    attempts_left: left,
                    locked: false
                })
                .into_iter()
                .chain([Verdict::Exhausted { locked: false }])
                .collect::<Vec<_>>()
        );
        assert!(attempts.iter().all(|v| v.is_failure()));
    }

    #[test]
    fn after_ten_failures_each_attempt_waits_twice_as_long() {
        assert_eq!(retry_at(9, Some(NOW)), None);
        assert_eq!(retry_at(10, Some(NOW)), Some(NOW + 1));
        assert_eq!(retry_at(11, Some(NOW)), Some(NOW + 2));
        assert_eq!(retry_at(15, Some(NOW)), Some(NOW + 32));
        assert_eq!(retry_at(99, Some(NOW)), Some(NOW + 3600));

        let mut throttled = state(0, 14);
        throttled.last_failure_at = Some(NOW - 10);
        let never_checked = |_: Option<u64>| -> Result<u64, CodeRejected> {
            panic!("a throttled attempt is not checked")
        };
        assert_eq!(
            judge(throttled, NOW, never_checked),
            Verdict::Throttled { retry_at: NOW + 6 }
        );
        assert!(matches!(
            judge(throttled, NOW + 6, wrong),
            Verdict::Wrong { .. }
        ));
    }

    #[test]
    fn the_hundredth_failure_locks_and_a_locked_enrollment_is_not_checked() {
        let mut last = state(0, 99);
        last.last_failure_at = Some(NOW - 3600);
        assert_eq!(
            judge(last, NOW, wrong),
            Verdict::Wrong {
                reason: CodeRejected::Wrong,
                attempts_left: 4,
                locked: true
            }
        );
        let locked = AttemptState {
            locked: true,
            ..state(0, 100)
        };
        assert_eq!(judge(locked, NOW, |_| Ok(9)), Verdict::Locked);
    }

    #[test]
    fn a_replayed_code_is_a_failure() {
        let verdict = judge(state(0, 0), NOW, |_| Err(CodeRejected::Replayed));
        assert_eq!(
            verdict,
            Verdict::Wrong {
                reason: CodeRejected::Replayed,
                attempts_left: 4,
                locked: false
            }
        );
    }
}
