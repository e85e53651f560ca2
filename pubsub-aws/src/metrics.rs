//! Counting API requests per operation at the SDK layer (interceptors): [`RequestCounter`] for
//! the figures (requests per published and per consumed message), and, with the feature
//! `otel`, the OpenTelemetry counter `pubsub.aws.requests` on every client this crate makes.

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

/// A client of the SDK crate `$sdk` from `config` (or from a configuration builder, `builder =
/// ...`), with `counter` if given and, with the feature `otel`, the OpenTelemetry request
/// counter: the one recipe every client follows.
macro_rules! client_with_meters {
    ($sdk:ident, builder = $builder:expr, $counter:expr) => {{
        let mut builder = $builder;
        if let Some(counter) = $counter {
            builder = builder.interceptor(counter.clone());
        }
        #[cfg(feature = "otel")]
        {
            builder = builder.interceptor(RequestMeter::new());
        }
        $sdk::Client::from_conf(builder.build())
    }};
    // After the arm above: `builder = ...` is an expression too.
    ($sdk:ident, $config:expr, $counter:expr) => {{
        client_with_meters!($sdk, builder = $sdk::config::Builder::from($config), $counter)
    }};
}

/// The S3 client this crate makes (see [`client_with_meters`]): with an endpoint configured (an
/// emulator), buckets addressed by path, not by host name.
#[cfg(feature = "s3")]
pub(crate) fn s3_client(
    config: &aws_config::SdkConfig,
    counter: Option<&RequestCounter>,
) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    client_with_meters!(aws_sdk_s3, builder = builder, counter)
}

/// The SNS client this crate makes (see [`client_with_meters`]).
pub(crate) fn sns_client(
    config: &aws_config::SdkConfig,
    counter: Option<&RequestCounter>,
) -> aws_sdk_sns::Client {
    client_with_meters!(aws_sdk_sns, config, counter)
}

/// The SQS client this crate makes (see [`client_with_meters`]).
pub(crate) fn sqs_client(
    config: &aws_config::SdkConfig,
    counter: Option<&RequestCounter>,
) -> aws_sdk_sqs::Client {
    client_with_meters!(aws_sdk_sqs, config, counter)
}

/// Counts every HTTP request (retries included) as `pubsub.aws.requests`, by `rpc.service` and
/// `rpc.method` (the operation), to the global meter provider as it was when the client was
/// made: divided by `messaging.client.consumed.messages`, AWS requests per message.
#[cfg(feature = "otel")]
#[derive(Debug, Clone)]
struct RequestMeter {
    requests: opentelemetry::metrics::Counter<u64>,
}

#[cfg(feature = "otel")]
impl RequestMeter {
    fn new() -> RequestMeter {
        let requests = opentelemetry::global::meter("pubsub-aws")
            .u64_counter("pubsub.aws.requests")
            .with_unit("{request}")
            .with_description("AWS API requests, retries included")
            .build();
        RequestMeter { requests }
    }
}

#[cfg(feature = "otel")]
impl Intercept for RequestMeter {
    fn name(&self) -> &'static str {
        "RequestMeter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use opentelemetry::KeyValue;
        let (service, method) =
            cfg.load::<Metadata>().map_or(("unknown".to_owned(), "unknown".to_owned()), |m| {
                (m.service().to_owned(), m.name().to_owned())
            });
        self.requests.add(
            1,
            &[
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
            ],
        );
        Ok(())
    }
}
