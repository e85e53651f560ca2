//! Two types claiming one media type: the registry names both. (`inventory` keeps one
//! registry per binary, so this test has a file of its own.)

use pubsub_core::{registry::Registry, registry::RegistryError, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.thing"]
struct Thing {
    id: String,
}

mod other {
    use super::*;

    #[derive(Serialize, Deserialize, Validate, PubSubMessage)]
    #[media_type = "application/vnd.acme.pubsub.thing"]
    pub(crate) struct SameThing {
        name: String,
    }
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.unrelated"]
struct Unrelated {}

#[test]
fn two_types_with_one_media_type_are_reported_with_both_names() {
    let error = Registry::global().unwrap_err();
    assert_eq!(
        error,
        RegistryError::Duplicate {
            media_type: "application/vnd.acme.pubsub.thing".into(),
            first: "registry_duplicate::Thing".into(),
            second: "registry_duplicate::other::SameThing".into(),
        }
    );
    let text = error.to_string();
    assert!(text.contains("registry_duplicate::Thing") && text.contains("other::SameThing"), "{text}");
}

#[test]
fn a_builder_without_the_duplicate_works() {
    let registry =
        Registry::builder().typed::<Thing>().unwrap().typed::<Unrelated>().unwrap().build().unwrap();
    assert_eq!(
        registry.media_types().collect::<Vec<_>>(),
        ["application/vnd.acme.pubsub.thing", "application/vnd.acme.pubsub.unrelated"]
    );
    let again = Registry::builder().typed::<Thing>().unwrap().typed::<other::SameThing>().unwrap().build();
    assert!(matches!(again, Err(RegistryError::Duplicate { .. })));
}
