//! The `pubsub` command line: publish messages, read a queue, provision topics and queues.
//!
//! ```text
//! pubsub publish --topic-arn ARN --media-type TYPE --json '{"uri": "..."}'
//! cat messages.jsonl | pubsub publish --topic-arn ARN --media-type TYPE
//! pubsub read --queue-url URL [--max N] [--wait-seconds S] [--nack] [--nack-timeout S]
//! pubsub provision --config pubsub.toml
//! ```
//!
//! Credentials come from the AWS default chain; `--endpoint-url`, `--region` and `--profile`
//! override the environment.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use pubsub_aws::provision::{ProvisionConfig, Provisioner};
use pubsub_aws::{load_config, AwsOptions, SnsPublisher, SqsSubscriber};
use pubsub_core::{producer::PublishError, Consumer, Producer, TopicMap, UntypedMessage};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "pubsub", about = "Publish to SNS, read from SQS, provision both")]
struct Cli {
    /// The service endpoint (an emulator), instead of AWS_ENDPOINT_URL.
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// The region, instead of AWS_REGION.
    #[arg(long, global = true)]
    region: Option<String>,
    /// The profile, instead of AWS_PROFILE.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Debug logs (AWS SDK internals stay at info).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publishes one message (--json), or one per line of standard input; prints each id.
    Publish {
        /// The topic's ARN.
        #[arg(long)]
        topic_arn: String,
        /// The media type of every message.
        #[arg(long)]
        media_type: String,
        /// The message's fields, a JSON object; without it, JSON objects are read from stdin.
        #[arg(long)]
        json: Option<String>,
    },
    /// Prints messages as JSON lines and acknowledges them (unless --nack).
    Read {
        /// The queue's URL.
        #[arg(long)]
        queue_url: String,
        /// Stop after this many messages (else when a receive finds nothing).
        #[arg(long)]
        max: Option<usize>,
        /// Long-poll wait of each receive.
        #[arg(long, default_value_t = 1)]
        wait_seconds: u64,
        /// Return the messages to the queue instead of deleting them.
        #[arg(long)]
        nack: bool,
        /// With --nack: how long they stay invisible.
        #[arg(long, default_value_t = 0)]
        nack_timeout: u64,
    },
    /// Creates what a TOML file describes; prints ARNs and URLs. A second run changes nothing.
    Provision {
        /// The TOML file.
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under --debug the AWS SDK and HTTP internals stay at info: their debug output includes
    // signing material.
    let quiet = [
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
    if let Err(error) = pubsub_core::logging::Logging::new().debug(cli.debug).quiet(quiet).try_init() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let options = AwsOptions { region: cli.region, profile: cli.profile, endpoint_url: cli.endpoint_url };
    match run(cli.command, &options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` when some input lines or messages failed but others went on.
async fn run(command: Command, options: &AwsOptions) -> Result<bool, Box<dyn std::error::Error>> {
    let config = load_config(options).await;
    match command {
        Command::Publish { topic_arn, media_type, json } => {
            let producer =
                Producer::new(SnsPublisher::new(&config), TopicMap::new().default_topic(&topic_arn));
            match json {
                Some(text) => {
                    let message = UntypedMessage::new(&media_type, serde_json::from_str(&text)?)?;
                    println!("{}", producer.produce_with(&message, &Default::default()).await?);
                    Ok(true)
                }
                None => publish_lines(&producer, &media_type).await,
            }
        }
        Command::Read { queue_url, max, wait_seconds, nack, nack_timeout } => {
            let consumer = Consumer::new(SqsSubscriber::new(&config, &queue_url).await?)
                .wait_time(Duration::from_secs(wait_seconds));
            let mut read = 0;
            let mut all_good = true;
            'reading: loop {
                let deliveries = consumer.consume_up_to(max.map_or(usize::MAX, |max| max - read)).await?;
                if deliveries.is_empty() && max.is_none() {
                    break;
                }
                for delivery in deliveries {
                    let message = delivery.message();
                    match delivery.decode::<pubsub_core::UntypedMessage>() {
                        Ok(decoded) => println!(
                            "{}",
                            json!({
                                "message_id": message.message_id,
                                "media_type": decoded.media_type,
                                "receive_count": message.receive_count,
                                "opaque_data": decoded.opaque_data.iter().collect::<std::collections::BTreeMap<_, _>>(),
                                "content": Value::Object(decoded.message.content),
                            })
                        ),
                        Err(error) => {
                            all_good = false;
                            eprintln!("message {}: {error}", message.message_id);
                        }
                    }
                    if nack {
                        delivery.nack(Some(Duration::from_secs(nack_timeout))).await?;
                    } else {
                        delivery.ack().await?;
                    }
                    read += 1;
                    if max.is_some_and(|max| read >= max) {
                        break 'reading;
                    }
                }
            }
            Ok(all_good)
        }
        Command::Provision { config: path } => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let wanted = ProvisionConfig::from_toml(&text)?;
            let created = Provisioner::new(&config).apply(&wanted).await?;
            for (kind, name, id) in created {
                println!("{kind} {name} {id}");
            }
            Ok(true)
        }
    }
}

/// Publishes one message per non-blank line of stdin, in batches; a bad line is reported with
/// its number and the others go on.
async fn publish_lines(producer: &Producer, media_type: &str) -> Result<bool, Box<dyn std::error::Error>> {
    // Each message with its line number on stdin, so that every report names the line.
    let mut messages = Vec::new();
    let mut lines = Vec::new();
    let mut all_good = true;
    for (number, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(&line)
            .map_err(|e| e.to_string())
            .and_then(|content| UntypedMessage::new(media_type, content).map_err(|e| e.to_string()))
            .and_then(|message| {
                message.check_convention().map(|()| message).map_err(|report| report.to_string())
            });
        match parsed {
            Ok(message) => {
                messages.push(message);
                lines.push(number + 1);
            }
            Err(error) => {
                all_good = false;
                eprintln!("line {}: {error}", number + 1);
            }
        }
    }
    let mut result = producer.produce_batch(&messages).await;
    // Lines refused before sending (too large, say) are reported; the others still go.
    if let Err(PublishError::Refused { refused, .. }) = &result {
        let refused: Vec<(usize, String)> = refused.iter().map(|(i, e)| (*i, e.to_string())).collect();
        all_good = false;
        for (index, error) in refused.into_iter().rev() {
            eprintln!("line {}: {error}", lines[index]);
            messages.remove(index);
            lines.remove(index);
        }
        result = producer.produce_batch(&messages).await;
    }
    let (sent, failures, error) = match result {
        Ok(ids) => (ids.into_iter().map(Some).collect(), Vec::new(), None),
        Err(PublishError::Partial { sent, failures }) => (sent, failures, None),
        Err(PublishError::Transport { error, sent, failures }) => (sent, failures, Some(error)),
        Err(error) => return Err(error.into()),
    };
    for id in sent.iter().flatten() {
        println!("{id}");
    }
    for (index, error) in &failures {
        all_good = false;
        eprintln!("line {}: {error}", lines[*index]);
    }
    match error {
        Some(error) => {
            let published = sent.iter().flatten().count();
            Err(format!(
                "{error}; {published} of {} messages were published (their ids are above)",
                sent.len()
            )
            .into())
        }
        None => Ok(all_good),
    }
}
