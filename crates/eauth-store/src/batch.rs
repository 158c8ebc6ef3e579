//! Concurrent calls of one kind, written together: the busiest writes of the service (new
//! sessions, code attempts, callback results, page openings, enrollments) each have a
//! [`Batcher`] that gathers the calls waiting for it and hands them to one function, which
//! writes them all with a few multi-row statements in one write.
//!
//! A statement costs about as much as the round trip to the database's thread or process,
//! whatever its row count, and on a busy machine that round trip dominates: the writer's
//! transactions would otherwise be as long as their statement count. Calls that arrive while
//! a batch is being written wait for the next one, so batches grow with the load, and there is
//! no timer: an idle service writes a lone call at once.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// A call waiting for its batch, and who waits for its result.
type Waiting<In, Out> = (In, oneshot::Sender<Result<Out>>);

/// The calls of one kind waiting to be written.
pub(crate) struct Batcher<In, Out> {
    queue: Mutex<Queue<In, Out>>,
}

struct Queue<In, Out> {
    waiting: Vec<Waiting<In, Out>>,
    /// Whether a task is writing batches (and will take what waits).
    writing: bool,
}

impl<In, Out> Default for Batcher<In, Out> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                writing: false,
            }),
        }
    }
}

impl<In: Send + 'static, Out: Send + 'static> Batcher<In, Out> {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue<In, Out>> {
        // Only pushes and swaps happen under the lock: nothing can panic there.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `call` with the others waiting: `write` gets the batch, in the order the calls
    /// came, and returns each call's result in that order (`Err` for all of them if the
    /// whole write failed). Batches are written on a task of their own, so a caller
    /// cancelled while it waits (its client went away) cancels nobody else's write.
    pub(crate) async fn call<W, F>(self: &Arc<Self>, call: In, write: W) -> Result<Out>
    where
        W: Fn(Vec<In>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<Result<Out>>>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.waiting.push((call, tx));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            let batcher = self.clone();
            tokio::spawn(async move { batcher.write_waiting(write).await });
        }
        rx.await
            .map_err(|_| StoreError::Database("the batched write was abandoned".into()))?
    }

    /// Writes what waits, then what arrived meanwhile, until nothing is left.
    async fn write_waiting<W, F>(&self, write: W)
    where
        W: Fn(Vec<In>) -> F,
        F: Future<Output = Result<Vec<Result<Out>>>>,
    {
        loop {
            let batch = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let (calls, waiters): (Vec<In>, Vec<_>) = batch.into_iter().unzip();
            match write(calls).await {
                Ok(results) => {
                    debug_assert_eq!(results.len(), waiters.len(), "BUG: one result per call");
                    for (result, waiter) in results.into_iter().zip(waiters) {
                        let _ = waiter.send(result);
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    tracing::error!(error = %message, "a batched write failed");
                    for waiter in waiters {
                        let _ = waiter.send(Err(StoreError::Database(message.clone().into())));
                    }
                }
            }
        }
    }
}
