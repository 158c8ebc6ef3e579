//! Push approval with number matching: the two-digit number the sign-in page shows and the
//! app must send back, and what an approval or a denial does to a pending sign-in.
//!
//! The number proves that whoever approves on the device is looking at the browser that is
//! signing in: an attacker who knows the password cannot get a sign-in approved by a user who
//! taps "approve" out of habit (the "MFA fatigue" attack).

/// Wrong numbers a sign-in takes; the last one ends it as REJECT.
pub const PUSH_ATTEMPTS: u32 = 3;

/// The number shown on the sign-in page: 10 to 99, so it is always two digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchNumber(u8);

impl MatchNumber {
    /// A fresh random number, uniform over 10..=99.
    pub fn generate() -> Self {
        Self(rand::random_range(10..=99))
    }

    /// The number as stored or typed, if it is one.
    pub fn new(value: i64) -> Option<Self> {
        u8::try_from(value)
            .ok()
            .filter(|n| (10..=99).contains(n))
            .map(Self)
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// What the app asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDecision {
    /// Approve, with the number the user read in the browser (anything the app sent).
    Approve(i64),
    /// "This wasn't me".
    Deny,
}

/// Why a push ended a sign-in as REJECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The user denied it.
    Denied,
    /// The last wrong number the sign-in takes.
    WrongNumbers,
    /// The enrollment is locked after too many wrong codes.
    Locked,
}

/// What a decision comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// The right number: finish the sign-in as approved.
    Approved,
    /// A wrong number; the sign-in goes on.
    WrongNumber {
        /// Numbers it still takes.
        attempts_left: u32,
    },
    /// Finish the sign-in as REJECT.
    Rejected(RejectReason),
}

impl PushVerdict {
    /// Whether the verdict counts a wrong number against the sign-in.
    pub fn is_wrong_number(self) -> bool {
        matches!(
            self,
            Self::WrongNumber { .. } | Self::Rejected(RejectReason::WrongNumbers)
        )
    }
}

/// Judges a decision on a sign-in that shows `expected` and has had `failures` wrong
/// numbers, for an enrollment that is `locked` or not.
pub fn judge(
    expected: MatchNumber,
    failures: u32,
    locked: bool,
    decision: PushDecision,
) -> PushVerdict {
    match decision {
        PushDecision::Deny => PushVerdict::Rejected(RejectReason::Denied),
        // A locked enrollment is locked for every way in (README: until enabled again).
        PushDecision::Approve(_) if locked => PushVerdict::Rejected(RejectReason::Locked),
        PushDecision::Approve(typed) if MatchNumber::new(typed) == Some(expected) => {
            PushVerdict::Approved
        }
        PushDecision::Approve(_) => {
            let used = failures + 1;
            if used >= PUSH_ATTEMPTS {
                PushVerdict::Rejected(RejectReason::WrongNumbers)
            } else {
                PushVerdict::WrongNumber {
                    attempts_left: PUSH_ATTEMPTS - used,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: i64) -> MatchNumber {
        MatchNumber::new(n).expect("two digits")
    }

    #[test]
    fn numbers_are_two_digits_and_all_of_them_occur() {
        let mut seen = [false; 100];
        for _ in 0..5000 {
            let n = MatchNumber::generate().get();
            assert!((10..=99).contains(&n));
            seen[usize::from(n)] = true;
        }
        assert!(seen[10..=99].iter().all(|s| *s), "uniform over 10..=99");
        for bad in [-1, 0, 9, 100, 256, 1034] {
            assert_eq!(MatchNumber::new(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_right_number_approves_and_the_third_wrong_one_rejects() {
        assert_eq!(
            judge(number(42), 2, false, PushDecision::Approve(42)),
            PushVerdict::Approved
        );
        let verdicts: Vec<_> = (0..3)
            .map(|failures| judge(number(42), failures, false, PushDecision::Approve(24)))
            .collect();
        assert_eq!(
            verdicts,
            [
                PushVerdict::WrongNumber { attempts_left: 2 },
                PushVerdict::WrongNumber { attempts_left: 1 },
                PushVerdict::Rejected(RejectReason::WrongNumbers),
            ]
        );
        assert!(verdicts.iter().all(|v| v.is_wrong_number()));
        // 1042 is not 42, even modulo 256 or 1000.
        assert_eq!(
            judge(number(42), 0, false, PushDecision::Approve(1042)),
            PushVerdict::WrongNumber { attempts_left: 2 }
        );
    }

    #[test]
    fn deny_always_rejects_and_a_locked_enrollment_cannot_approve() {
        assert_eq!(
            judge(number(42), 0, false, PushDecision::Deny),
            PushVerdict::Rejected(RejectReason::Denied)
        );
        assert_eq!(
            judge(number(42), 0, true, PushDecision::Approve(42)),
            PushVerdict::Rejected(RejectReason::Locked)
        );
        assert!(!PushVerdict::Rejected(RejectReason::Denied).is_wrong_number());
    }
}
