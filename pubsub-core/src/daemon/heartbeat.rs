//! The heartbeat: extends the visibility of messages in flight: being handled, or waiting for
//! their turn in their FIFO group.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::settle::Settle;
use super::{truncate, Shared};
use crate::transport::Subscriber;

/// Extends the visibility of messages still in flight before it runs out, up to
/// `heartbeat_max` per message.
pub(super) async fn heartbeat_loop<S: Subscriber>(shared: Arc<Shared<S>>, stop: CancellationToken) {
    let visibility = shared.subscriber.visibility_timeout();
    let tick = (visibility / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = stop.cancelled() => return,
        }
        let now = Instant::now();
        let mut extensions = Vec::new();
        {
            let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
            for message in in_flight.messages.values_mut().filter(|m| m.extending) {
                let receipt = &message.receipt_handle;
                if message.visible_until.saturating_duration_since(now) > visibility / 2 {
                    continue;
                }
                // The last extension is cut short so that the message stays invisible for
                // `heartbeat_max` in all, not a moment less or a whole timeout more.
                let left = shared.config.heartbeat_max.saturating_sub(now - message.received_at);
                let extension = visibility.min(left);
                if now + extension <= message.visible_until {
                    message.extending = false;
                    tracing::warn!(receipt_handle = %truncate(receipt),
                        "message still in flight at the heartbeat maximum; no longer extending, the message may be handled elsewhere");
                    continue;
                }
                message.visible_until = now + extension;
                extensions.push((receipt.clone(), extension));
            }
            // Sent under the lock: a handler that finishes now queues its outcome after these.
            for (receipt, extension) in extensions.iter() {
                shared.send(Settle::Visibility(receipt.clone(), *extension));
            }
        }
        if !extensions.is_empty() {
            tracing::debug!(extended = extensions.len(), "visibility extended");
            shared.dispatcher.telemetry.extended(extensions.len());
        }
    }
}
