//! The rules of a device registration (`POST /app-api/v1/devices`): which code registers a
//! device, and the throttle that bounds how many codes anyone may guess.
//!
//! Registration needs no password, only a `client_id` and an `email` (both in the QR code)
//! and a current code, so anyone can try it. Its failures are therefore counted apart from the
//! sign-in page's: were they counted towards the enrollment's sign-in lock (100 failures,
//! `signin`), a stranger could lock any user out of signing in, and an answer that depends on
//! the enrollment's state (throttled, locked) would tell who is enrolled. Instead failures are
//! counted per user and per source address in windows of their own, kept whether or not the
//! user is enrolled, so that an unenrolled user and an enrolled one with a wrong code get the
//! same answers, THROTTLED included.
//!
//! A window limits a guesser to [`USER`]'s 10 codes a day per user: with three codes
//! accepted at any moment (RFC 6238 §5.2's skew), a year of guessing against one user finds
//! one with a chance of about 1 % (3 650 × 3 / 10⁶), and every refusal is logged. The price is
//! that a stranger can keep a user from registering a device for a day at a time; that user
//! still signs in with a code, which this throttle never touches.

use std::net::IpAddr;

use crate::{ClientId, CodeRejected, Email, throttle::source_group};

/// How many failed registrations a key takes within a window before the next is refused
/// unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures a window takes; the next attempt in it is THROTTLED.
    pub limit: u32,
    /// How long a window lasts from its first failure.
    pub window_secs: i64,
}

/// Per user (application and email), enrolled or not: 10 failures a day. A successful
/// registration, which only the holder of the secret can make, clears them.
pub const USER: Throttle = Throttle {
    limit: 10,
    window_secs: 24 * 3600,
};

/// Per source address (an IPv6 client's /64): 20 failures an hour, which also catches one
/// address trying many users. Never cleared by a success: anyone can succeed for a user of
/// their own and would reset it.
pub const ADDRESS: Throttle = Throttle {
    limit: 20,
    window_secs: 3600,
};

/// One key's failures in its current window, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    /// Failures since the window began.
    pub failures: u32,
    /// Unix seconds at which the window ends (its first failure plus the window's length).
    pub ends_at: i64,
}

impl Throttle {
    /// When a key with `window` may be tried again, or `None` if it may be tried at `now`.
    pub fn retry_at(self, window: Option<FailureWindow>, now: i64) -> Option<i64> {
        let window = window?;
        (window.failures >= self.limit && now < window.ends_at).then_some(window.ends_at)
    }

    /// The key's window once one more failure happened at `now`: a window that ended (or
    /// holds nothing) starts again at `now`.
    pub fn after_failure(self, window: Option<FailureWindow>, now: i64) -> FailureWindow {
        match window {
            Some(window) if window.failures > 0 && now < window.ends_at => FailureWindow {
                failures: window.failures.saturating_add(1),
                ends_at: window.ends_at,
            },
            _ => FailureWindow {
                failures: 1,
                ends_at: now + self.window_secs,
            },
        }
    }
}

/// The keys a registration's failures are counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKeys {
    /// `user:<client_id>:<email>`, counted with [`USER`].
    pub user: String,
    /// `address:<source group>`, counted with [`ADDRESS`].
    pub address: String,
}

impl ThrottleKeys {
    /// The keys of a registration for `client_id` and `email` from `source`. Neither says
    /// whether anyone is enrolled: the user key exists for any well-formed pair.
    pub fn new(client_id: ClientId, email: &Email, source: IpAddr) -> Self {
        Self {
            user: format!("user:{client_id}:{}", email.as_str()),
            address: format!("address:{}", source_group(source)),
        }
    }
}

/// What the store read for one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationState {
    /// The user key's window.
    pub user: Option<FailureWindow>,
    /// The address key's window.
    pub address: Option<FailureWindow>,
    /// The enrollment, if the user is enrolled.
    pub enrollment: Option<EnrolledState>,
}

/// What of an enrollment a registration looks at. Not its sign-in failures or back-off: the
/// registration's own throttle stands in for those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolledState {
    /// Whether the enrollment's sign-in is locked after too many wrong codes.
    pub locked: bool,
    /// The last accepted time step.
    pub last_used_step: Option<u64>,
}

/// What a registration comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The code is right: mark `step` used and store the device.
    Approved {
        /// The accepted time step.
        step: u64,
    },
    /// A wrong or already used code, or nobody enrolled (told apart from a wrong code only
    /// here, never to the caller): one failure for each key.
    Refused(CodeRejected),
    /// The right code of an enrollment whose sign-in is locked: nothing is registered, and
    /// since only the secret's holder can get this answer, it may say so.
    Locked,
    /// Too many failures in a window: no code is checked before `retry_at`.
    Throttled {
        /// Unix seconds.
        retry_at: i64,
    },
}

/// Judges one registration at `now`. `check` verifies the code against the last used step;
/// it is called only for an enrolled user whose keys may be tried.
pub fn judge(
    state: RegistrationState,
    now: i64,
    check: impl FnOnce(Option<u64>) -> Result<u64, CodeRejected>,
) -> Verdict {
    let retry_at = [
        USER.retry_at(state.user, now),
        ADDRESS.retry_at(state.address, now),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(retry_at) = retry_at {
        return Verdict::Throttled { retry_at };
    }
    let Some(enrollment) = state.enrollment else {
        return Verdict::Refused(CodeRejected::Wrong);
    };
    match check(enrollment.last_used_step) {
        Ok(_) if enrollment.locked => Verdict::Locked,
        Ok(step) => Verdict::Approved { step },
        Err(reason) => Verdict::Refused(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn window(failures: u32, ends_at: i64) -> Option<FailureWindow> {
        Some(FailureWindow { failures, ends_at })
    }

    fn enrolled(locked: bool) -> Option<EnrolledState> {
        Some(EnrolledState {
            locked,
            last_used_step: Some(7),
        })
    }

    fn state(
        user: Option<FailureWindow>,
        address: Option<FailureWindow>,
        enrollment: Option<EnrolledState>,
    ) -> RegistrationState {
        RegistrationState {
            user,
            address,
            enrollment,
        }
    }

    fn never_checked(_: Option<u64>) -> Result<u64, CodeRejected> {
        panic!("the code is not checked")
    }

    #[test]
    fn a_window_starts_at_the_first_failure_and_restarts_once_it_ended() {
        let first = USER.after_failure(None, NOW);
        assert_eq!(first, window(1, NOW + 86_400).expect("window"));
        let second = USER.after_failure(Some(first), NOW + 100);
        assert_eq!(second, window(2, NOW + 86_400).expect("window"));
        assert_eq!(
            USER.after_failure(Some(second), NOW + 86_400),
            window(1, NOW + 2 * 86_400).expect("window"),
            "the window ended"
        );
        assert_eq!(
            ADDRESS.after_failure(window(0, NOW + 5), NOW),
            window(1, NOW + 3600).expect("window"),
            "an empty window starts afresh"
        );
    }

    #[test]
    fn a_key_is_throttled_from_its_limit_until_its_window_ends() {
        assert_eq!(USER.retry_at(None, NOW), None);
        assert_eq!(USER.retry_at(window(9, NOW + 10), NOW), None);
        assert_eq!(USER.retry_at(window(10, NOW + 10), NOW), Some(NOW + 10));
        assert_eq!(USER.retry_at(window(10, NOW + 10), NOW + 10), None);
        assert_eq!(ADDRESS.retry_at(window(19, NOW + 10), NOW), None);
        assert_eq!(ADDRESS.retry_at(window(20, NOW + 10), NOW), Some(NOW + 10));
    }

    #[test]
    fn either_key_throttles_unchecked_and_the_later_end_is_the_retry_time() {
        for (user, address, retry_at) in [
            (window(10, NOW + 50), None, NOW + 50),
            (None, window(20, NOW + 30), NOW + 30),
            (window(10, NOW + 50), window(20, NOW + 90), NOW + 90),
        ] {
            for enrollment in [None, enrolled(false), enrolled(true)] {
                assert_eq!(
                    judge(state(user, address, enrollment), NOW, never_checked),
                    Verdict::Throttled { retry_at }
                );
            }
        }
    }

    #[test]
    fn nobody_enrolled_is_refused_as_a_wrong_code_is() {
        assert_eq!(
            judge(state(None, None, None), NOW, never_checked),
            Verdict::Refused(CodeRejected::Wrong)
        );
        let wrong = judge(state(None, None, enrolled(false)), NOW, |_| {
            Err(CodeRejected::Wrong)
        });
        assert_eq!(wrong, Verdict::Refused(CodeRejected::Wrong));
    }

    #[test]
    fn a_right_code_registers_unless_the_sign_in_is_locked_and_a_wrong_one_is_refused_either_way() {
        let right = |last: Option<u64>| {
            assert_eq!(last, Some(7), "checked against the last used step");
            Ok(8)
        };
        assert_eq!(
            judge(state(window(9, NOW + 1), None, enrolled(false)), NOW, right),
            Verdict::Approved { step: 8 }
        );
        assert_eq!(
            judge(state(None, None, enrolled(true)), NOW, right),
            Verdict::Locked
        );
        assert_eq!(
            judge(state(None, None, enrolled(true)), NOW, |_| Err(
                CodeRejected::Wrong
            )),
            Verdict::Refused(CodeRejected::Wrong),
            "a locked enrollment answers a wrong code as nobody enrolled does"
        );
        assert_eq!(
            judge(state(None, None, enrolled(false)), NOW, |_| Err(
                CodeRejected::Replayed
            )),
            Verdict::Refused(CodeRejected::Replayed)
        );
    }

    #[test]
    fn the_keys_name_the_user_whether_enrolled_or_not_and_group_ipv6_by_64() {
        let app = ClientId::generate();
        let email = Email::parse(" Jane@Example.com").expect("email");
        let keys = ThrottleKeys::new(app, &email, "2001:db8::1".parse().expect("ip"));
        assert_eq!(keys.user, format!("user:{app}:jane@example.com"));
        assert_eq!(keys.address, "address:2001:db8::/64");
    }
}
