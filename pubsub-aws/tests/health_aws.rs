//! The health probes over HTTP on 127.0.0.1 with a real SQS queue (moto): ready once a receive
//! succeeded, 503 during the drain after the stop is asked while live stays 200, and nothing
//! served once the daemon has stopped.

mod support;

use std::time::Duration;

use pubsub_aws::SqsSubscriber;
use pubsub_core::health::HealthServer;
use pubsub_core::{handler, DaemonBuilder, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use validator::Validate;

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.held_job"]
struct HeldJob {
    id: u32,
}

/// Handlers under way, and the permits that let them finish.
static STARTED: Semaphore = Semaphore::const_new(0);
static RELEASE: Semaphore = Semaphore::const_new(0);

#[handler]
async fn held(_job: HeldJob) {
    STARTED.add_permits(1);
    RELEASE.acquire().await.unwrap().forget();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_503_during_the_drain_while_live_and_gone_once_stopped() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(support::unique_name("health")).send().await.unwrap();
    let queue = queue.queue_url.unwrap();
    for id in 0..2 {
        let body = pubsub_core::encode(&HeldJob { id }, &Default::default()).unwrap();
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let daemon = DaemonBuilder::new("held-jobs")
        .handler::<held>()
        .wait_time(Duration::from_secs(1))
        .build(SqsSubscriber::new(&config, &queue).await.unwrap())
        .unwrap();
    let server = HealthServer::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let health = daemon.health();
    let serving = tokio::spawn(server.serve(health.clone(), health.stopped()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));

    // Both messages under way: ready (a receive succeeded), two in flight.
    tokio::time::timeout(Duration::from_secs(30), STARTED.acquire_many(2)).await.unwrap().unwrap().forget();
    let (status, body) = support::http_get(addr, "/health/ready").await.unwrap();
    assert_eq!(
        (status, body["phase"].as_str(), body["in_flight"].as_u64()),
        (200, Some("running"), Some(2)),
        "{body}"
    );

    // The stop is asked; the handlers still hold: draining, not ready, still live.
    stop.send(()).unwrap();
    let mut answer = None;
    for _ in 0..100 {
        answer = support::http_get(addr, "/health/ready").await;
        if answer.as_ref().is_some_and(|(status, _)| *status == 503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = answer.unwrap();
    assert_eq!(
        (status, body["phase"].as_str(), body["in_flight"].as_u64()),
        (503, Some("draining"), Some(2)),
        "{body}"
    );
    assert_eq!(support::http_get(addr, "/health/live").await.map(|(status, _)| status), Some(200));

    RELEASE.add_permits(2);
    let report = tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap();
    assert_eq!(report.count(Verdict::Succeeded), 2);
    tokio::time::timeout(Duration::from_secs(5), serving).await.unwrap().unwrap();
    assert!(support::http_get(addr, "/health/live").await.is_none(), "the server stops with the daemon");
    assert_eq!(support::left_in(&sqs, &queue).await, 0, "both deleted in the drain");
}
