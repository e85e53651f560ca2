//! Loading the SDK configuration the AWS way, with timeouts on every call.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Overrides of what the environment says; credentials are never among them.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// The region, else `AWS_REGION` / the profile's.
    pub region: Option<String>,
    /// The profile, else `AWS_PROFILE` / `default`.
    pub profile: Option<String>,
    /// The endpoint (an emulator), else `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
}

/// Timeouts of every SDK call: a blackholed connection cannot hang a poller.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting.
    pub connect: Duration,
    /// One attempt of a call (a receive adds its long-poll wait to this).
    pub attempt: Duration,
    /// A whole call, retries included (a receive adds its long-poll wait to this).
    pub operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
            operation: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The SDK's form, with `extra` added to the attempt and operation timeouts (a receive's
    /// `WaitTimeSeconds`).
    pub fn config(&self, extra: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt + extra)
            .operation_timeout(self.operation + extra)
            .build()
    }
}

/// Loads the SDK configuration: the default credential chain, the region and endpoint from
/// `options` or the environment, and [`Timeouts::default`] on every call.
pub async fn load_config(options: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(Timeouts::default().config(Duration::ZERO));
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
