//! Three daemons on one FIFO queue of the embedded broker: several groups, handled with each
//! group's order kept, while some messages fail and are retried.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::memory::QueueOptions;
use pubsub_core::{
    handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer, PubSubMessage, TopicMap,
    Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

const GROUPS: u32 = 5;
const PER_GROUP: u32 = 12;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.account_event"]
struct AccountEvent {
    #[message_group_id]
    account: u32,
    seq: u32,
    #[message_deduplication_id]
    event_id: String,
}

/// One success: (account, seq, daemon).
type Success = (u32, u32, &'static str);

/// Which daemon handled what, in the order handlers succeeded.
#[derive(Clone, Default)]
struct Handled(Arc<Mutex<Vec<Success>>>);

/// The name of the daemon a handler runs in.
#[derive(Clone, Copy)]
struct DaemonName(&'static str);

#[handler]
async fn apply_account_event(
    event: AccountEvent,
    context: &MessageContext,
    handled: &Handled,
    daemon: &DaemonName,
) -> Result<(), HandlerError> {
    // Long enough for the daemons' receives to interleave.
    tokio::time::sleep(Duration::from_millis(2)).await;
    // Every fourth event fails on its first delivery, and every seventh on its first two.
    let failures = match event.seq {
        seq if seq % 7 == 3 => 2,
        seq if seq % 4 == 1 => 1,
        _ => 0,
    };
    if context.receive_count() <= failures {
        return Err(HandlerError::failed(format!("transient failure {}", context.receive_count())));
    }
    handled.0.lock().unwrap().push((event.account, event.seq, daemon.0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_keep_each_groups_order_through_failures_and_retries() {
    let broker = MemoryBroker::new();
    let queue = broker.create_queue(
        "accounts.fifo",
        QueueOptions { visibility_timeout: Duration::from_secs(5), ..QueueOptions::default() },
    );
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&queue));
    // Interleaved, as events of many accounts arrive.
    let events: Vec<AccountEvent> = (0..PER_GROUP)
        .flat_map(|seq| {
            (0..GROUPS).map(move |account| AccountEvent {
                account,
                seq,
                event_id: format!("{account}-{seq}"),
            })
        })
        .collect();
    producer.produce_batch(&events).await.unwrap();

    let handled = Handled::default();
    let daemons = ["a", "b", "c"].map(|name| {
        DaemonBuilder::new("accounts")
            .collaborator(handled.clone())
            .collaborator(DaemonName(name))
            .concurrency(4)
            .wait_time(Duration::from_millis(20))
            .backoff(BackoffPolicy::Fixed(Duration::ZERO))
            .build(broker.subscriber("accounts.fifo").unwrap())
            .unwrap()
    });
    let [a, b, c] = daemons.map(|daemon| tokio::spawn(daemon.run_until_idle()));
    let reports = [a.await.unwrap(), b.await.unwrap(), c.await.unwrap()];
    // A daemon that went idle while another held the queue's groups stopped early; the others
    // finished the work.
    assert_eq!(broker.queue_stats("accounts.fifo").total, 0, "nothing is left");
    let succeeded: u64 = reports.iter().map(|report| report.count(Verdict::Succeeded)).sum();
    let failed: u64 = reports.iter().map(|report| report.count(Verdict::Failed)).sum();
    assert_eq!(succeeded, u64::from(GROUPS * PER_GROUP));
    // Failed and retried (with the backoff): each failure at least once per group.
    assert!(failed >= u64::from(GROUPS * 4), "{failed} failures");

    let handled = handled.0.lock().unwrap().clone();
    let mut by_account: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (account, seq, _) in &handled {
        by_account.entry(*account).or_default().push(*seq);
    }
    let in_order: Vec<u32> = (0..PER_GROUP).collect();
    for account in 0..GROUPS {
        assert_eq!(by_account[&account], in_order, "account {account}: each event once, in order");
    }
    let daemons_that_worked: std::collections::BTreeSet<&str> = handled.iter().map(|(_, _, d)| *d).collect();
    assert!(daemons_that_worked.len() > 1, "the daemons shared the work: {daemons_that_worked:?}");
}
