//! Wakes the long polls of `GET /app-api/v1/signins` when this process offers a sign-in to a
//! user's devices, so that the app hears of it at once. Sign-ins offered by other processes
//! are found by the poll's once-a-second look at the database.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use eauth_core::{ClientId, Email};
use tokio::sync::Notify;

type Key = (ClientId, Email);

/// One [`Notify`] per user that someone is waiting for, so an offer wakes only that user's
/// polls, not every poll of the process.
#[derive(Debug, Default)]
pub struct PushSignals(Mutex<HashMap<Key, Arc<Notify>>>);

/// A poll's interest in one user's sign-ins; dropped, it leaves the map if it was the last.
pub(crate) struct Listener<'a> {
    signals: &'a PushSignals,
    key: Key,
    notify: Arc<Notify>,
}

impl PushSignals {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Notify>>> {
        // The map holds no invariant a panicking holder could break.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts listening for offers to this user's devices.
    pub(crate) fn listen(&self, client_id: ClientId, email: &Email) -> Listener<'_> {
        let key = (client_id, email.clone());
        let notify = self.map().entry(key.clone()).or_default().clone();
        Listener {
            signals: self,
            key,
            notify,
        }
    }

    /// A sign-in of this user was just offered: wake their polls.
    pub fn signal(&self, client_id: ClientId, email: &Email) {
        if let Some(notify) = self.map().get(&(client_id, email.clone())) {
            notify.notify_waiters();
        }
    }

    /// How many users are being waited for (for tests of the clean-up).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Listener<'_> {
    /// The user's `Notify`: create a `notified()` future and `enable()` it before looking at
    /// the database, so that an offer made in between is not missed.
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        let mut map = self.signals.map();
        // The map's reference and this one: nobody else listens.
        if Arc::strong_count(&self.notify) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_wakes_the_listeners_of_its_user_only_and_listeners_clean_up() {
        let signals = PushSignals::default();
        let app = ClientId::generate();
        let jane = Email::parse("jane@example.com").expect("email");
        let john = Email::parse("john@example.com").expect("email");
        let janes = signals.listen(app, &jane);
        let johns = signals.listen(app, &john);
        {
            let jane_woken = janes.notify().notified();
            let john_woken = johns.notify().notified();
            tokio::pin!(jane_woken, john_woken);
            jane_woken.as_mut().enable();
            john_woken.as_mut().enable();

            signals.signal(app, &jane);
            tokio::time::timeout(std::time::Duration::from_secs(1), jane_woken)
                .await
                .expect("jane's listener woken");
            assert!(
                tokio::time::timeout(std::time::Duration::from_millis(50), john_woken)
                    .await
                    .is_err(),
                "john's listener sleeps on"
            );
        }
        let second = signals.listen(app, &jane);
        drop(janes);
        assert_eq!(signals.len(), 2, "jane still has a listener");
        drop(second);
        drop(johns);
        assert!(signals.is_empty());
    }
}
