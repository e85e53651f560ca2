//! Counting API requests per operation at the SDK layer (an interceptor), for the figures:
//! requests per published and per consumed message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts every HTTP request (retries included) by operation name. Clone it into the
/// clients' configurations and read [`counts`](RequestCounter::counts) when done.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// Requests per operation (`Publish`, `PublishBatch`, `ReceiveMessage`, ...).
pub type RequestCounts = BTreeMap<String, u64>;

impl RequestCounter {
    /// A counter at zero.
    pub fn new() -> RequestCounter {
        RequestCounter::default()
    }

    /// The counts so far.
    pub fn counts(&self) -> RequestCounts {
        self.counts.lock().expect("counter lock").clone()
    }

    /// Requests of `operation` so far.
    pub fn get(&self, operation: &str) -> u64 {
        self.counts.lock().expect("counter lock").get(operation).copied().unwrap_or(0)
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.counts.lock().expect("counter lock").values().sum()
    }

    /// Back to zero.
    pub fn reset(&self) {
        self.counts.lock().expect("counter lock").clear();
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", |metadata| metadata.name()).to_owned();
        *self.counts.lock().expect("counter lock").entry(operation).or_default() += 1;
        Ok(())
    }
}
