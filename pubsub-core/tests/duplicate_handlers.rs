//! Two handlers for one media type: the daemon refuses to start and names both. (Its own
//! file: `inventory` keeps one registry per test binary.)

use pubsub_core::{handler, handlers::HandlerSetError, DaemonBuilder, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.ping"]
struct Ping {}

#[handler]
async fn first(_ping: Ping) {}

mod elsewhere {
    #[pubsub_core::handler]
    pub(super) async fn second(_ping: super::Ping) {}
}

#[test]
fn two_handlers_for_one_media_type_are_refused_by_name() {
    let error = DaemonBuilder::new("pings").handler_table().unwrap_err();
    assert_eq!(
        error,
        HandlerSetError::Duplicate {
            media_type: "application/vnd.acme.pubsub.ping".into(),
            first: "duplicate_handlers::elsewhere::second".into(),
            second: "duplicate_handlers::first".into(),
        }
    );
    // A daemon bound to one of them starts.
    assert_eq!(
        DaemonBuilder::new("pings").select_handlers(["first"]).handler_table().unwrap().media_types().len(),
        1
    );
    // Registered explicitly, the two collide just the same; one alone starts.
    assert!(matches!(
        DaemonBuilder::new("pings").handler::<first>().handler::<elsewhere::second>().handler_table(),
        Err(HandlerSetError::Duplicate { .. })
    ));
    assert!(DaemonBuilder::new("pings").handler::<elsewhere::second>().handler_table().is_ok());
}
