//! What callback deliveries came to (see [`Store::batched`]): every approved sign-in ends with
//! one.

use std::collections::HashSet;

use uuid::Uuid;

use crate::{
    Callback, CallbackStatus, DeliveryResult, Pool, Result,
    SqlType::{BigInt, Text},
    Store,
    db::Value,
    execute_rows, update_rows,
};

/// A delivery's result, as [`Store::record_delivery`] writes it.
pub(crate) struct Recorded {
    id: Uuid,
    /// The attempt the result is of: each claim counts one.
    attempt: u32,
    status: CallbackStatus,
    next_attempt_at: Option<i64>,
    error: Option<String>,
    now: i64,
}

impl Store {
    /// Records what the delivery of `claimed` (as its claim returned it) came to, and releases
    /// the claim. Changes nothing if the claim was lost: a holder whose lease ran out while it
    /// waited for the portal must not undo what the one that claimed the callback next
    /// recorded (a delivery turned back into a retry, or into a failure).
    pub async fn record_delivery(
        &self,
        claimed: &Callback,
        result: &DeliveryResult,
        now: i64,
    ) -> Result<()> {
        let (status, next_attempt_at, error) = match result {
            DeliveryResult::Delivered => (CallbackStatus::Delivered, None, None),
            DeliveryResult::Retry {
                next_attempt_at,
                error,
            } => (
                CallbackStatus::Pending,
                Some(*next_attempt_at),
                Some(error.clone()),
            ),
            DeliveryResult::GaveUp { error } => (CallbackStatus::Failed, None, Some(error.clone())),
        };
        let recorded = Recorded {
            id: claimed.id,
            attempt: claimed.attempts,
            status,
            next_attempt_at,
            error,
            now,
        };
        self.batched(&self.batches.deliveries, recorded, Store::record_deliveries)
            .await
    }

    async fn record_deliveries(self, mut batch: Vec<Recorded>) -> Result<Vec<Result<()>>> {
        let count = batch.len();
        // One row per claim (a statement updates a row once): the last result wins, as it
        // would one after the other.
        let mut seen = HashSet::new();
        batch.reverse();
        batch.retain(|recorded| seen.insert((recorded.id, recorded.attempt)));
        write_one!(self, conn => {
            let sql = text_per_dialect!(conn.dialect(), update_rows(
                conn.dialect(),
                "callbacks",
                &[Text, Text, BigInt, Text, BigInt, BigInt],
                "status = v.column2,
                     next_attempt_at = COALESCE(v.column3, callbacks.next_attempt_at),
                     last_error = v.column4,
                     delivered_at = CASE WHEN v.column2 = 'DELIVERED' THEN v.column5 ELSE callbacks.delivered_at END,
                     lease_until = NULL",
                "callbacks.id = v.column1 AND callbacks.attempts = v.column6
                     AND callbacks.status = 'PENDING'",
            ));
            let rows: Vec<Vec<Value<'_>>> = batch
                .iter()
                .map(|recorded| {
                    args![
                        recorded.id.to_string(),
                        recorded.status.as_str(),
                        recorded.next_attempt_at,
                        recorded.error.as_deref(),
                        recorded.now,
                        i64::from(recorded.attempt)
                    ]
                    .into()
                })
                .collect();
            execute_rows(conn, sql, &rows).await?;
            Ok(())
        })?;
        Ok(crate::batch::each_done(count))
    }
}
