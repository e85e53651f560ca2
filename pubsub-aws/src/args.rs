//! The AWS flags of a command line, for daemons and tools: flatten [`AwsArgs`] beside
//! pubsub-core's `DaemonArgs`, which knows no AWS.

use crate::config::AwsOptions;

/// `--region`, `--profile` and `--endpoint-url`, overriding the environment; credentials are
/// never among them (they always come from the AWS default chain).
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     daemon: pubsub_core::cli::DaemonArgs,
///     #[command(flatten)]
///     aws: pubsub_aws::AwsArgs,
/// }
///
/// let args = Args::parse_from(["billing", "--sqs-queue-url", "https://sqs.example/1/q", "--region", "eu-west-1"]);
/// assert_eq!(args.aws.into_options().region.as_deref(), Some("eu-west-1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[non_exhaustive]
pub struct AwsArgs {
    /// With a real queue or topic: the AWS region, instead of AWS_REGION.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// With a real queue or topic: the AWS profile, instead of AWS_PROFILE (credentials always
    /// come from the AWS default chain).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// With a real queue or topic: the service endpoint (an emulator), instead of
    /// AWS_ENDPOINT_URL.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
}

/// The log targets of the AWS SDK and its HTTP stack, to keep at info even when the rest logs
/// at debug (their debug output includes signing material):
/// `Logging::new().debug(true).quiet(SDK_LOG_TARGETS)`.
pub const SDK_LOG_TARGETS: [&str; 10] = [
    "aws_config",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_sigv4",
    "aws_sdk_sqs",
    "aws_sdk_sns",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

impl AwsArgs {
    /// The environment variable of each option, after the daemon's name
    /// ([`pubsub_core::cli::Environment`]): the seed's `SQS_CONSUMER` names. They apply to SNS
    /// too (one region, profile and endpoint for both).
    pub const ENVIRONMENT: pubsub_core::cli::EnvironmentTable = &[
        ("endpoint_url", "SQS_CONSUMER__ENDPOINT_URL"),
        ("region", "SQS_CONSUMER__REGION_NAME"),
        ("profile", "SQS_CONSUMER__PROFILE_NAME"),
    ];

    /// The options [`load_config`](crate::load_config) takes.
    pub fn into_options(self) -> AwsOptions {
        AwsOptions { region: self.region, profile: self.profile, endpoint_url: self.endpoint_url }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use pubsub_core::cli::DaemonArgs;

    #[derive(Parser)]
    struct Daemon {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(flatten)]
        aws: AwsArgs,
    }

    #[test]
    fn the_flags_sit_beside_the_daemon_flags_and_become_options() {
        let parsed = Daemon::try_parse_from([
            "daemon",
            "--concurrency",
            "3",
            "--region",
            "eu-west-1",
            "--profile",
            "ops",
            "--endpoint-url",
            "http://127.0.0.1:4566",
        ])
        .unwrap();
        assert_eq!(parsed.daemon.concurrency, 3);
        let options = parsed.aws.into_options();
        assert_eq!(
            (options.region.as_deref(), options.profile.as_deref(), options.endpoint_url.as_deref()),
            (Some("eu-west-1"), Some("ops"), Some("http://127.0.0.1:4566"))
        );
        let none = Daemon::try_parse_from(["daemon"]).unwrap().aws;
        assert_eq!(none, AwsArgs::default());
        // The core alone knows no AWS flag.
        assert!(DaemonArgs::try_parse_from(["daemon", "--region", "eu-west-1"]).is_err());
    }
}
