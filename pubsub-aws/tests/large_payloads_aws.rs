//! Large payloads on the AWS transport, against moto (SNS, SQS and S3; started by
//! scripts/test.sh): `S3ObjectStore` (put, get, delete, what a missing or unreadable object
//! gives, request counting).

mod support;

use pubsub_aws::{RequestCounter, S3ObjectStore};
use pubsub_core::payload::{ObjectStore, ObjectStoreError, PayloadPointer};

/// A bucket of its own for a test, on the emulator; its name as S3 wants it (lower case).
async fn bucket(store: &S3ObjectStore, prefix: &str) -> String {
    let name = support::unique_name(prefix).to_ascii_lowercase().replace('_', "-");
    store.client().create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// `size` bytes of text that are not all alike (a cut or a shuffled part shows).
fn text_of(size: usize) -> String {
    (0..size).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[tokio::test]
async fn the_s3_store_writes_reads_and_deletes_objects_and_counts_its_requests() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let counter = RequestCounter::new();
    let store = S3ObjectStore::with_counter(&config, &counter);
    let bucket = bucket(&store, "objects").await;

    for (key, size) in [("small", 10), ("one-mib", 1 << 20), ("ten-mib", 10 << 20)] {
        let pointer = PayloadPointer::new(&bucket, key);
        let body = text_of(size);
        store.put(&pointer, body.clone()).await.unwrap();
        let read = store.get(&pointer).await.unwrap();
        assert!(read == body, "{key}: {} bytes read back, {} written", read.len(), body.len());
    }
    // Multi-byte characters stay whole.
    let pointer = PayloadPointer::new(&bucket, "dir/naïve ключ");
    store.put(&pointer, "héllo wörld ✓".into()).await.unwrap();
    assert_eq!(store.get(&pointer).await.unwrap(), "héllo wörld ✓");

    store.delete(&pointer).await.unwrap();
    assert_eq!(store.get(&pointer).await, Err(ObjectStoreError::NotFound(pointer.clone())));
    // Deleting what is gone is no error.
    store.delete(&pointer).await.unwrap();
    assert_eq!(counter.get("PutObject"), 4, "{:?}", counter.counts());
    assert_eq!(counter.get("GetObject"), 5, "{:?}", counter.counts());
    assert_eq!(counter.get("DeleteObject"), 2, "{:?}", counter.counts());
}

#[tokio::test]
async fn a_missing_object_or_bucket_is_not_found_and_a_binary_object_is_refused() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let store = S3ObjectStore::new(&config);
    let bucket = bucket(&store, "missing").await;

    let missing = PayloadPointer::new(&bucket, "never-written");
    assert_eq!(store.get(&missing).await, Err(ObjectStoreError::NotFound(missing.clone())));
    let no_bucket = PayloadPointer::new(support::unique_name("no-such-bucket").to_ascii_lowercase(), "k");
    assert_eq!(store.get(&no_bucket).await, Err(ObjectStoreError::NotFound(no_bucket.clone())));
    assert_eq!(
        store.put(&no_bucket, "body".into()).await,
        Err(ObjectStoreError::NotFound(no_bucket.clone()))
    );
    store.delete(&no_bucket).await.unwrap();

    // Written by someone else: bytes that are no UTF-8 text cannot be a message body.
    let binary = PayloadPointer::new(&bucket, "binary");
    store
        .client()
        .put_object()
        .bucket(&bucket)
        .key("binary")
        .body(vec![0xff, 0xfe, 0x00, 0x80].into())
        .send()
        .await
        .unwrap();
    match store.get(&binary).await {
        Err(ObjectStoreError::Refused { pointer, reason }) => {
            assert_eq!(pointer, binary);
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("a binary object: {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable() {
    // Nothing listens there (a port free a moment ago): no emulator needed, loopback only.
    let addr = support::free_loopback_addr();
    let credentials = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(support::REGION))
        .credentials_provider(credentials)
        .endpoint_url(format!("http://{addr}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let store = S3ObjectStore::new(&config);
    let pointer = PayloadPointer::new("bucket", "key");
    match store.get(&pointer).await {
        Err(ObjectStoreError::Unavailable(reason)) => assert!(reason.contains("s3://bucket/key"), "{reason}"),
        other => panic!("no server: {other:?}"),
    }
}
