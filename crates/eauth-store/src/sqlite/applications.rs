//! Applications read once per change, for every API call and sign-in page names one.
//!
//! A read on SQLite starts cold: a commit by another connection empties a connection's page
//! cache, and the writer commits all the time, so each read fetches its pages again. For the
//! application, which changes perhaps once a month, that was the largest single cost of a
//! session-token (eauth-bench: 26 % of the request threads' time, with the parsing of its URLs).
//! So a parsed copy is kept, and reused while the application's stamp has not changed.
//!
//! The stamp is a file next to the database holding 16 random bytes, rewritten after every
//! committed change to an application, by whichever process made it (`eauthd admin` too): a
//! key rotated or an application deactivated in one process is seen by every other one at the
//! next request, as it is read from the database. A process reads the stamp before it reads an
//! application, so a copy is never newer than its stamp says. (SQLite's WAL already requires
//! every process on the database to share this machine, hence this file.)

use std::{collections::HashMap, os::unix::fs::FileExt, path::Path, sync::Mutex};

use eauth_core::ClientId;

use crate::{Application, Result, StoreError};

type Stamp = [u8; 16];

/// The parsed applications of this process, and the stamp they were read under.
pub(crate) struct Applications {
    stamp: std::fs::File,
    read: Mutex<HashMap<ClientId, (Stamp, Application)>>,
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Database(Box::new(error))
}

impl Applications {
    /// The stamp of the database at `database` (`<database>-applications`), created if missing.
    pub(crate) fn open(database: &Path) -> Result<Self> {
        let mut path = database.as_os_str().to_owned();
        path.push("-applications");
        let stamp = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error)?;
        Ok(Self {
            stamp,
            read: Mutex::new(HashMap::new()),
        })
    }

    fn stamp(&self) -> Result<Stamp> {
        let mut stamp = Stamp::default();
        // A new, empty file reads as zeros: a stamp like any other.
        let _ = self.stamp.read_at(&mut stamp, 0).map_err(io_error)?;
        Ok(stamp)
    }

    fn copies(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, (Stamp, Application)>> {
        // Only inserts, lookups and clears happen under the lock: nothing can panic there.
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The application `client_id`: the copy read under the current stamp, or what `read`
    /// reads (and is kept, if there is one).
    pub(crate) fn get(
        &self,
        client_id: ClientId,
        read: impl FnOnce() -> Result<Option<Application>>,
    ) -> Result<Option<Application>> {
        let stamp = self.stamp()?;
        if let Some((read_under, application)) = self.copies().get(&client_id)
            && *read_under == stamp
        {
            return Ok(Some(application.clone()));
        }
        let application = read()?;
        if let Some(application) = &application {
            self.copies()
                .insert(client_id, (stamp, application.clone()));
        }
        Ok(application)
    }

    /// After a change to an application was committed: every process reads applications
    /// again.
    pub(crate) fn changed(&self) -> Result<()> {
        self.copies().clear();
        self.stamp
            .write_all_at(uuid::Uuid::new_v4().as_bytes(), 0)
            .map_err(io_error)
    }
}
