//! The connection to the server cut for seconds and restored, through a small TCP proxy in
//! the test: receives, deletes and nacks fail, back off and retry; the daemon lives on, and
//! every message is handled once and deleted (acks that failed in the cut were retried).

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_aws::provision::{Provisioner, QueueSpec};
use pubsub_aws::SqsSubscriber;
use pubsub_core::{encode, handler, DaemonBuilder, HandlerError, OpaqueData, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.tick"]
struct Tick {
    n: u32,
}

/// Successful handler calls per tick, and the ticks nacked once.
struct Calls(Mutex<HashMap<u32, u32>>, Mutex<HashSet<u32>>);

/// Every third tick is nacked the first time it is handled, so that nacks too meet the cut.
/// (Not by receive count: a receive whose answer the cut lost counts as a receive too.)
#[handler]
async fn tick(tick: Tick, calls: &Arc<Calls>) -> Result<(), HandlerError> {
    tokio::time::sleep(Duration::from_millis(150)).await;
    if tick.n.is_multiple_of(3) && calls.1.lock().unwrap().insert(tick.n) {
        return Err(HandlerError::retry_after(Duration::ZERO));
    }
    *calls.0.lock().unwrap().entry(tick.n).or_default() += 1;
    Ok(())
}

/// Forwards connections to `target` while up; when cut, drops every open connection and
/// refuses new ones.
struct Proxy {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
    refused: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let refused = Arc::new(AtomicUsize::new(0));
        let (accepting, watching, refusing) = (up.clone(), cuts.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    refusing.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: the client sees the connection closed
                }
                let mut cut = watching.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { address, up, cuts, refused }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_survived_and_nothing_is_lost() {
    let Some(endpoint) = support::require_emulator() else { return };
    let direct = support::sdk_config().await;
    // A receive the cut interrupts after the server took it leaves its messages invisible, as
    // SQS does, until their visibility timeout: 10 s, so that they come back within the test
    // while an ack that failed in the 3 s cut still has time to be retried before its message
    // would be delivered again.
    let spec = QueueSpec { visibility_timeout: Some(Duration::from_secs(10)), ..QueueSpec::default() };
    let queue = Provisioner::new(&direct).queue(&support::unique_name("cut"), &spec).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&direct);
    let total = 30u32;
    for n in 0..total {
        let body = encode(&Tick { n }, &OpaqueData::new()).unwrap();
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }

    let target: SocketAddr = endpoint.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let proxy = Proxy::start(target).await;
    let through_proxy = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(support::REGION))
        .endpoint_url(format!("http://{}", proxy.address))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let calls = Arc::new(Calls(Mutex::new(HashMap::new()), Mutex::new(HashSet::new())));
    let daemon = DaemonBuilder::new("ticks")
        .handler::<tick>()
        .collaborator(calls.clone())
        .concurrency(5)
        .wait_time(Duration::from_secs(1))
        .build(SqsSubscriber::new(&through_proxy, &queue).await.unwrap())
        .unwrap();
    let started = std::time::Instant::now();
    // Runs until every tick was handled (not until the queue looks idle: the messages of an
    // interrupted receive are invisible for a while).
    let all_handled = {
        let calls = calls.clone();
        async move {
            while calls.0.lock().unwrap().len() < total as usize {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let run = tokio::spawn(daemon.run(all_handled));

    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.cut();
    let handled_before_cut = calls.0.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();

    let report =
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("the daemon finishes").unwrap();
    assert!(handled_before_cut < total as usize, "the cut came while messages were being handled");
    assert!(proxy.refused.load(Ordering::SeqCst) > 0, "requests were tried, and refused, during the cut");
    assert_eq!(report.unsettled, 0);
    let calls = calls.0.lock().unwrap().clone();
    assert_eq!(calls.len(), total as usize, "every message handled: {report}");
    assert!(calls.values().all(|&c| c == 1), "none twice: {calls:?}");
    assert_eq!(report.count(Verdict::Retried), u64::from(total.div_ceil(3)), "the nacks: {report}");
    assert_eq!(report.count(Verdict::Succeeded), total as u64);
    // Nothing visible and nothing in flight: an ack that failed in the cut and was forgotten
    // would leave its message invisible until its visibility timeout ran out.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let counts: Vec<&str> = attributes.attributes().unwrap().values().map(String::as_str).collect();
    assert_eq!(counts, ["0", "0"], "every delete went through in the end: {attributes:?}");
    eprintln!(
        "figures: network cut: {total} sent, {} handled before the 3 s cut, {} connections refused \
         during it, {} handled in all, 0 twice, 0 left; done {:?} after the start",
        handled_before_cut,
        proxy.refused.load(Ordering::SeqCst),
        calls.len(),
        started.elapsed()
    );
}
