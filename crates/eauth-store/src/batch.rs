//! Concurrent calls of one kind, done together on PostgreSQL: the busiest statements of the
//! service (new sessions, code attempts, callback results, application lookups) each have a
//! [`Batcher`] that gathers the calls waiting for it and hands them to one function, which
//! serves them all with a few multi-row statements.
//!
//! A statement costs a round trip to the server, whatever its row count; under load that round
//! trip is most of a request's cost. (On SQLite a statement costs microseconds in the calling
//! thread, and calls are served one at a time: see `Store::batched`.) Calls that arrive while a batch is being served wait for
//! the next one, so batches grow with the load; there is no timer, and an idle service serves
//! a lone call at once. A read in a batch starts after its call was made, so it sees every
//! write that committed before.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// A call waiting for its batch, and who waits for its result.
type Waiting<In, Out> = (In, oneshot::Sender<Result<Out>>);

/// Batches of one kind served at once, at most. Two keep one waiting behind the one being
/// served: in the writer's queue, a waiting batch of each kind shares the next commit with
/// the other kinds' (one at a time, kinds would take turns and each pay a commit of its own).
/// The calls of two batches served at once are all concurrent (none returned before the other
/// batch was taken), so either order of the two is an order they could have come in.
const IN_FLIGHT: usize = 2;

/// The calls of one kind waiting to be served.
pub(crate) struct Batcher<In, Out> {
    queue: Mutex<Queue<In, Out>>,
}

struct Queue<In, Out> {
    waiting: Vec<Waiting<In, Out>>,
    /// Tasks serving batches (each takes what waits when it is done with its batch).
    serving: usize,
}

impl<In, Out> Default for Batcher<In, Out> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                serving: 0,
            }),
        }
    }
}

/// The result of each of `count` calls whose batch was written whole.
pub(crate) fn each_done(count: usize) -> Vec<Result<()>> {
    (0..count).map(|_| Ok(())).collect()
}

impl<In: Send + 'static, Out: Send + 'static> Batcher<In, Out> {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue<In, Out>> {
        // Only pushes and swaps happen under the lock: nothing can panic there.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `call` with the others waiting: `serve` gets the batch, in the order the calls
    /// came, and returns each call's result in that order (`Err` for all of them if the
    /// whole batch failed). Batches are served on tasks of their own, so a caller cancelled
    /// while it waits (its client went away) cancels nobody else's call.
    pub(crate) async fn call<W, F>(self: &Arc<Self>, call: In, serve: W) -> Result<Out>
    where
        W: Fn(Vec<In>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<Result<Out>>>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let batch = {
            let mut queue = self.queue();
            queue.waiting.push((call, tx));
            if queue.serving < IN_FLIGHT {
                queue.serving += 1;
                Some(std::mem::take(&mut queue.waiting))
            } else {
                None
            }
        };
        if let Some(batch) = batch {
            let batcher = self.clone();
            tokio::spawn(async move { batcher.serve_from(batch, serve).await });
        }
        rx.await
            .map_err(|_| StoreError::Database("the batched call was abandoned".into()))?
    }

    /// Serves `batch`, then what arrived meanwhile, until nothing is left.
    async fn serve_from<W, F>(&self, mut batch: Vec<Waiting<In, Out>>, serve: W)
    where
        W: Fn(Vec<In>) -> F,
        F: Future<Output = Result<Vec<Result<Out>>>>,
    {
        loop {
            let (calls, waiters): (Vec<In>, Vec<_>) = batch.into_iter().unzip();
            let (started, count) = (std::time::Instant::now(), calls.len());
            let served = serve(calls).await;
            // As the SQLite writer logs its batches: how large they grow, how long they take.
            tracing::debug!(
                kind = std::any::type_name::<In>(),
                calls = count,
                us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "store batch"
            );
            match served {
                Ok(results) => {
                    debug_assert_eq!(results.len(), waiters.len(), "BUG: one result per call");
                    for (result, waiter) in results.into_iter().zip(waiters) {
                        let _ = waiter.send(result);
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    tracing::error!(error = %message, "a batch of store calls failed");
                    for waiter in waiters {
                        let _ = waiter.send(Err(StoreError::Database(message.clone().into())));
                    }
                }
            }
            let mut queue = self.queue();
            if queue.waiting.is_empty() {
                queue.serving -= 1;
                return;
            }
            batch = std::mem::take(&mut queue.waiting);
        }
    }
}
