//! The `pubsub` command line: publish messages, read a queue, provision topics and queues,
//! redrive a dead-letter queue, check a schema change.
//!
//! ```text
//! pubsub publish --topic-arn ARN --media-type TYPE --json '{"uri": "..."}'
//! cat messages.jsonl | pubsub publish --topic-arn ARN --media-type TYPE
//! cat messages.jsonl | pubsub publish --queue-url URL --media-type TYPE \
//!     [--message-group-id ID | --message-group-field FIELD] [--deduplication-id-field FIELD] \
//!     [--delay-seconds N] [--attribute NAME=VALUE]...
//! cat documents.jsonl | pubsub publish --topic-arn ARN --media-type TYPE \
//!     --large-payload-bucket BUCKET [--large-payload-threshold BYTES | --always-offload]
//! pubsub read --queue-url URL [--max N] [--wait-seconds S] [--nack] [--nack-timeout S]
//! pubsub provision --config pubsub.toml
//! pubsub redrive --from DLQ_URL --to QUEUE_URL [--max N] [--dry-run] [--visibility-timeout S]
//! pubsub schema check --baseline asyncapi.json --current new.json [--json]
//! ```
//!
//! `pubsub publish` sends to an SNS topic (`--topic-arn`) or straight to an SQS queue
//! (`--queue-url`), exactly one of them, with the `media_type` message attribute and each
//! `--attribute` (`NAME=VALUE` is a String, `NAME:Number=3` a Number, `NAME:Binary=<base64>`
//! bytes) on every message. To a FIFO topic or queue (a name ending in `.fifo`) every message
//! needs a group: `--message-group-id` gives all the same, `--message-group-field` takes each
//! message's from a field of its JSON object (a string or an integer), and
//! `--deduplication-id-field` its deduplication id likewise. A line without the field is
//! reported with its number and nothing of it is sent; the other lines go, each group's in
//! the order given. `--delay-seconds` (up to 900) hides each message that long, to a standard
//! queue only. One message id is printed per message sent.
//!
//! With `--large-payload-bucket`, a message over 256 KiB (body and attributes; or over
//! `--large-payload-threshold`, or every message with `--always-offload`) has its body written
//! to that S3 bucket and a pointer sent in its place, as AWS's extended client libraries do.
//! `pubsub read` reads the body of any message that comes as such a pointer from S3 (the pointer
//! names bucket and key) and prints the whole message; one whose object cannot be read is
//! printed with the error and left in the queue.
//!
//! `pubsub redrive` moves messages back from a dead-letter queue (`pubsub_aws::redrive`): each
//! is sent before it is deleted, body and message attributes unchanged (to a FIFO queue with
//! its group, deduplicated by its dead-letter message id), and deleted only once printed: one
//! JSON line per message moved (`message_id`, `new_message_id`, `media_type`,
//! `receive_count`), then `moved N, left M` on stderr. `--dry-run` prints what would move
//! (`new_message_id` null) and moves nothing. A message that could not be moved stays in the
//! dead-letter queue, is named on stderr, and the exit status is 1; a request failing
//! half-way stops the run with status 2 and says what moved before it.
//!
//! `pubsub schema check` compares two AsyncAPI documents (what a daemon's `--asyncapi` prints) or
//! two JSON Schemas, JSON or YAML (`pubsub_core::schema::compat`): per message, each change and
//! whether it breaks consumers (built on the new schema, reading what producers on the old one
//! send) or producers (writing the new shape for consumers still on the old one). A message the
//! service only receives gates on the consumers verdict, one it only sends on the producers
//! verdict. Exit status 1 when a gating change is breaking, so it can gate CI; `--json` prints
//! the report for tools. It needs no AWS.
//!
//! Credentials come from the AWS default chain; `--endpoint-url`, `--region` and `--profile`
//! override the environment.
//!
//! Built with the `otlp` feature, it exports its spans and metrics over OTLP when the standard
//! `OTEL_*` variables ask for it (service name `pubsub` unless `OTEL_SERVICE_NAME` says).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};
use pubsub_aws::provision::{ProvisionConfig, Provisioner};
use pubsub_aws::redrive::Redrive;
use pubsub_aws::{load_config, AwsArgs, AwsOptions, AwsPublisher, S3ObjectStore, SqsSubscriber};
use pubsub_core::codec::DecodeError;
use pubsub_core::consumer::Delivery;
use pubsub_core::payload::LargePayloads;
use pubsub_core::producer::{PublishError, PublishOptions};
use pubsub_core::schema::compat;
use pubsub_core::transport::{AttributeValue, Destination, ReceivedMessage, Subscriber, MAX_DELAY};
use pubsub_core::{Consumer, Decoded, Producer, TopicMap, UntypedMessage};
use serde_json::{json, Map, Value};

#[derive(Parser)]
#[command(
    name = "pubsub",
    about = "Publish to SNS or SQS, read from SQS, provision both, redrive dead-letter queues, check schema changes"
)]
struct Cli {
    #[command(flatten)]
    aws: AwsArgs,
    /// Debug logs (AWS SDK internals stay at info).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publishes one message (--json), or one per line of standard input, to a topic or a
    /// queue; prints each id.
    #[command(group(ArgGroup::new("destination").required(true).args(["topic_arn", "queue_url"])))]
    Publish {
        /// The SNS topic's ARN.
        #[arg(long, value_name = "ARN")]
        topic_arn: Option<String>,
        /// The SQS queue's URL: send straight to the queue, with no topic between.
        #[arg(long, value_name = "URL")]
        queue_url: Option<String>,
        /// The media type of every message.
        #[arg(long)]
        media_type: String,
        /// The message's fields, a JSON object; without it, JSON objects are read from stdin.
        #[arg(long)]
        json: Option<String>,
        #[command(flatten)]
        options: PublishArgs,
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
    /// Moves messages back from a dead-letter queue, each sent before it is deleted; prints one
    /// JSON line per message moved, then a summary on stderr.
    Redrive {
        /// The dead-letter queue's URL.
        #[arg(long)]
        from: String,
        /// The URL of the queue to move them to.
        #[arg(long)]
        to: String,
        /// Move at most this many messages (else until a receive finds nothing new).
        #[arg(long)]
        max: Option<usize>,
        /// Print what would move; move nothing (the messages received are made visible again).
        #[arg(long)]
        dry_run: bool,
        /// Seconds each received message stays hidden: long enough to move one batch of ten
        /// (with --dry-run, the whole run).
        #[arg(long, default_value_t = 60)]
        visibility_timeout: u64,
        /// Long-poll wait of each receive, in seconds.
        #[arg(long, default_value_t = 1)]
        wait_seconds: u64,
    },
    /// Message schemas as contracts.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Compares two AsyncAPI documents (what `--asyncapi` prints) or two JSON Schemas, JSON or
    /// YAML, and reports each change of each message as breaking or compatible for consumers
    /// and for producers. Exit status 1 when a change breaks a role the service has, 0 when
    /// none does, 2 when a file cannot be read.
    Check {
        /// The contract as it was: e.g. the asyncapi.json kept in the repository.
        #[arg(long, value_name = "FILE")]
        baseline: PathBuf,
        /// The contract as it is now: e.g. what the service's `--asyncapi` prints.
        #[arg(long, value_name = "FILE")]
        current: PathBuf,
        /// Print the report as JSON, for tools.
        #[arg(long)]
        json: bool,
    },
}

/// What `pubsub publish` sets on each message besides its fields.
#[derive(clap::Args)]
struct PublishArgs {
    /// The FIFO message group of every message (FIFO topics and queues require one).
    #[arg(long, value_name = "ID", conflicts_with = "message_group_field")]
    message_group_id: Option<String>,
    /// The FIFO message group of each message: the value of this field of its JSON object, a
    /// string or an integer. A line without it is reported with its number and not sent.
    #[arg(long, value_name = "FIELD")]
    message_group_field: Option<String>,
    /// The FIFO deduplication id of each message: the value of this field of its JSON object,
    /// a string or an integer (without it, a FIFO destination needs content-based
    /// deduplication). A line without it is reported with its number and not sent.
    #[arg(long, value_name = "FIELD")]
    deduplication_id_field: Option<String>,
    /// Hide each message this many seconds after it is sent (at most 900); standard queues
    /// only (--queue-url).
    #[arg(long, value_name = "N", requires = "queue_url")]
    delay_seconds: Option<u64>,
    /// A message attribute on every message, besides media_type; repeat it for more.
    /// `NAME=VALUE` is a String; `NAME:Number=3` a Number; `NAME:Binary=<base64>` bytes
    /// (`NAME:String=VALUE` is a String too).
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    attributes: Vec<(String, AttributeValue)>,
    /// Offload the body of each message over 256 KiB (body and attributes) to this S3 bucket
    /// and send a pointer to it instead, as AWS's extended client libraries do.
    #[arg(long, value_name = "BUCKET")]
    large_payload_bucket: Option<String>,
    /// With --large-payload-bucket: offload what is over this many bytes instead (at most
    /// 262144).
    #[arg(long, value_name = "BYTES", requires = "large_payload_bucket", conflicts_with = "always_offload",
          value_parser = clap::value_parser!(u32).range(0..=262_144))]
    large_payload_threshold: Option<u32>,
    /// With --large-payload-bucket: offload every message, whatever its size.
    #[arg(long, requires = "large_payload_bucket")]
    always_offload: bool,
}

/// `NAME=VALUE`, `NAME:String=VALUE`, `NAME:Number=3` or `NAME:Binary=<base64>`.
fn parse_attribute(text: &str) -> Result<(String, AttributeValue), String> {
    const FORMS: &str = "write NAME=VALUE (a String), NAME:Number=3 or NAME:Binary=<base64>";
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!("no `=` in {text:?}: {FORMS}"));
    };
    let (name, data_type) = key.split_once(':').unwrap_or((key, "String"));
    if name.is_empty() {
        return Err(format!("no attribute name in {text:?}: {FORMS}"));
    }
    if !matches!(data_type, "String" | "Number" | "Binary") {
        return Err(format!(
            "unknown type `{data_type}` in {text:?}: the types are String, Number and Binary; {FORMS}"
        ));
    }
    let value = AttributeValue::from_typed(data_type, value.to_owned())
        .ok_or_else(|| format!("the value of `{name}` is not base64: {FORMS}"))?;
    value.check().map_err(|reason| format!("`{name}` {reason}"))?;
    Ok((name.to_owned(), value))
}

impl PublishArgs {
    /// How the producer offloads large bodies, if it does (`--large-payload-bucket`).
    fn large_payloads(&self, config: &aws_config::SdkConfig) -> Option<LargePayloads> {
        let bucket = self.large_payload_bucket.as_ref()?;
        let mut large = LargePayloads::new(S3ObjectStore::new(config), bucket);
        if let Some(bytes) = self.large_payload_threshold {
            large = large.threshold(bytes as usize);
        }
        if self.always_offload {
            large = large.always();
        }
        Some(large)
    }

    /// The options of a message whose fields are `content`; an error names what is missing.
    fn options_for(&self, content: &Value) -> Result<PublishOptions, String> {
        let mut options = PublishOptions::new();
        options.attributes = self.attributes.iter().cloned().collect();
        options.delay = self.delay_seconds.map(Duration::from_secs);
        options.group_id = match &self.message_group_field {
            Some(field) => Some(id_field(content, field, "--message-group-field")?),
            None => self.message_group_id.clone(),
        };
        if let Some(field) = &self.deduplication_id_field {
            options.deduplication_id = Some(id_field(content, field, "--deduplication-id-field")?);
        }
        Ok(options)
    }
}

/// The string or integer in `content`'s field `field`, as text.
fn id_field(content: &Value, field: &str, flag: &str) -> Result<String, String> {
    match content.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => Ok(number.to_string()),
        Some(other) => Err(format!("the field `{field}` ({flag}) is {other}, not a string or an integer")),
        None => Err(format!("no field `{field}` ({flag}); nothing of this line was sent")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under --debug the AWS SDK and HTTP internals stay at info: their debug output includes
    // signing material.
    if let Err(error) =
        pubsub_core::logging::Logging::new().debug(cli.debug).quiet(pubsub_aws::SDK_LOG_TARGETS).try_init()
    {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    // Spans and metrics over OTLP when the OTEL_* variables ask for it, sent before exit.
    #[cfg(feature = "otlp")]
    let _export = match pubsub_core::telemetry::export::Export::from_env("pubsub") {
        Ok(export) => export,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // A script that sets TRACEPARENT (and TRACESTATE) has what this publishes join its trace.
    #[cfg(feature = "otel")]
    let _trace = pubsub_core::telemetry::context_from_environment().map(|context| context.attach());
    match run(cli.command, &cli.aws.into_options()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command; `Ok(false)` when some input lines or messages failed but others went on
/// (or, for `schema check`, when a change is breaking).
async fn run(command: Command, options: &AwsOptions) -> Result<bool, Box<dyn std::error::Error>> {
    // No AWS in it: nothing to load.
    if let Command::Schema { command: SchemaCommand::Check { baseline, current, json } } = &command {
        return schema_check(baseline, current, *json, &mut std::io::stdout().lock());
    }
    let config = load_config(options).await;
    match command {
        Command::Publish { topic_arn, queue_url, media_type, json, options } => {
            let destination = topic_arn.or(queue_url).expect("clap requires one");
            if let Some(delay) = options.delay_seconds {
                if Destination::of(&destination).is_fifo() {
                    return Err("--delay-seconds: a FIFO queue takes no delay per message (set the queue's \
                                delay_seconds when provisioning it)"
                        .into());
                }
                if delay > MAX_DELAY.as_secs() {
                    return Err(format!("--delay-seconds {delay}: SQS takes at most 900").into());
                }
            }
            let mut producer =
                Producer::new(AwsPublisher::new(&config), TopicMap::new().default_topic(&destination));
            if let Some(large) = options.large_payloads(&config) {
                producer = producer.large_payloads(large);
            }
            match json {
                Some(text) => {
                    let content: Value = serde_json::from_str(&text)?;
                    let options = options.options_for(&content)?;
                    let message = UntypedMessage::new(&media_type, content)?;
                    println!("{}", producer.produce_with_options(&message, &options).await?);
                    Ok(true)
                }
                None => publish_lines(&producer, &media_type, &options).await,
            }
        }
        Command::Read { queue_url, max, wait_seconds, nack, nack_timeout } => {
            // Messages that come as S3 pointers are printed whole: the pointer names the bucket.
            let consumer = Consumer::new(SqsSubscriber::new(&config, &queue_url).await?)
                .wait_time(Duration::from_secs(wait_seconds))
                .object_store(S3ObjectStore::new(&config));
            let nack = nack.then(|| Duration::from_secs(nack_timeout));
            read(&consumer, max, nack, &mut std::io::stdout().lock()).await
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
        Command::Redrive { from, to, max, dry_run, visibility_timeout, wait_seconds } => {
            let redrive = Redrive::new(&config, from, to)
                .max_messages(max)
                .dry_run(dry_run)
                .visibility_timeout(Duration::from_secs(visibility_timeout))
                .wait_time(Duration::from_secs(wait_seconds));
            redrive_and_print(&redrive, &mut std::io::stdout().lock()).await
        }
        Command::Schema { .. } => unreachable!("answered above, without AWS"),
    }
}

/// `pubsub schema check`: the report on `out`; `Ok(false)` when a change is breaking.
fn schema_check(
    baseline: &Path,
    current: &Path,
    json: bool,
    out: &mut impl Write,
) -> Result<bool, Box<dyn std::error::Error>> {
    let read = |path: &Path| -> Result<Value, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        pubsub_core::schema::read_document(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let report = compat::compare(&read(baseline)?, &read(current)?)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{report}")?;
    }
    Ok(!report.is_breaking())
}

/// Runs a redrive, printing each message moved as one JSON line on `out` (flushed before it
/// is deleted), then the messages not moved and the summary on stderr.
async fn redrive_and_print(
    redrive: &Redrive,
    out: &mut impl Write,
) -> Result<bool, Box<dyn std::error::Error>> {
    let result = redrive
        .run(|moved| {
            serde_json::to_writer(&mut *out, moved)?;
            writeln!(out)?;
            out.flush()
        })
        .await;
    let report = match &result {
        Ok(report) => Some(report),
        Err(error) => error.report(),
    };
    if let Some(report) = report {
        for failure in &report.not_moved {
            eprintln!(
                "message {}: not moved, still in the dead-letter queue: {}",
                failure.message_id, failure.reason
            );
        }
        for failure in &report.not_deleted {
            eprintln!("message {}: in both queues: {}", failure.message_id, failure.reason);
        }
    }
    let report = result?;
    eprintln!("{report}");
    Ok(report.is_complete())
}

/// Prints every message taken from the queue as one JSON line on `out`, then acknowledges (or
/// with `nack`, returns) what one receive brought in one request. A message that fails a
/// check is printed too, with `error`, and with `body` when it does not parse: nothing is
/// deleted unseen. Nothing is acknowledged once writing `out` fails. A message whose
/// offloaded body cannot be read from S3 is printed with the error (and the pointer as
/// `body`) and neither acknowledged nor returned: it stays in the queue, hidden for its
/// visibility timeout.
async fn read<S: Subscriber>(
    consumer: &Consumer<S>,
    max: Option<usize>,
    nack: Option<Duration>,
    out: &mut impl Write,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut read = 0;
    let mut all_good = true;
    while max.is_none_or(|max| read < max) {
        let deliveries = consumer.consume_up_to(max.map_or(usize::MAX, |max| max - read)).await?;
        if deliveries.is_empty() && max.is_none() {
            break;
        }
        for delivery in &deliveries {
            let (line, good) = message_line(delivery.message(), delivery.decode());
            all_good &= good;
            // Flushed line by line: an acknowledgement follows only what reached stdout.
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|error| format!("cannot write to standard output: {error}; the messages of this receive stay in the queue"))?;
        }
        read += deliveries.len();
        // What came as a pointer whose object cannot be read stays in the queue, to be read
        // once the object is there.
        let (unresolved, deliveries): (Vec<_>, Vec<_>) =
            deliveries.into_iter().partition(|delivery| unresolved_payload(delivery).is_some());
        for delivery in &unresolved {
            all_good = false;
            eprintln!(
                "message {}: its body {} cannot be read, so it stays in the queue: {}",
                delivery.message().message_id,
                delivery.payload().expect("a pointer"),
                unresolved_payload(delivery).expect("unresolved"),
            );
        }
        let results = match nack {
            Some(delay) => consumer.nack_all(&deliveries, Some(delay)).await?,
            None => consumer.ack_all(&deliveries).await?,
        };
        for (delivery, result) in deliveries.iter().zip(results) {
            if let Err(error) = result {
                all_good = false;
                let verb = if nack.is_some() { "returned" } else { "deleted" };
                eprintln!("message {}: printed but not {verb}: {error}", delivery.message().message_id);
            }
        }
    }
    Ok(all_good)
}

/// Why the body `delivery` points at could not be read, if it came as a pointer that was not
/// resolved.
fn unresolved_payload<S: Subscriber>(delivery: &Delivery<S>) -> Option<String> {
    delivery.payload()?;
    match delivery.decode::<UntypedMessage>() {
        Err(DecodeError::PayloadUnavailable { reason, .. }) => Some(reason),
        _ => None,
    }
}

/// One output line: `message_id`, `media_type`, `receive_count`, `opaque_data`, `content`;
/// `error` when a check failed, `body` when the body does not parse. `false` with an error.
/// `decoded` is the message as the consumer decoded it (its offloaded body read).
fn message_line(
    message: &ReceivedMessage,
    decoded: Result<Decoded<UntypedMessage>, DecodeError>,
) -> (Value, bool) {
    let mut line = json!({
        "message_id": message.message_id,
        "media_type": Value::Null,
        "receive_count": message.receive_count,
        "opaque_data": Value::Null,
        "content": Value::Null,
    });
    let fields = line.as_object_mut().expect("a JSON object");
    match decoded {
        Ok(decoded) => {
            fields.insert("media_type".into(), decoded.media_type.into());
            let opaque: Map<String, Value> =
                decoded.opaque_data.iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect();
            fields.insert("opaque_data".into(), Value::Object(opaque));
            fields.insert("content".into(), Value::Object(decoded.message.content));
            return (line, true);
        }
        Err(error) => {
            fields.insert("error".into(), error.to_string().into());
            // What the decoder could not accept is still shown as far as it parses.
            match salvage(&message.body) {
                Some(mut message) => {
                    if let Some(media_type) = message.remove(MEDIA_TYPE_KEY) {
                        fields.insert("media_type".into(), media_type);
                    }
                    if let Some(opaque) = message.remove(OPAQUE_DATA_KEY) {
                        fields.insert("opaque_data".into(), opaque);
                    }
                    let content = match error {
                        // The decoder's own reading, when only the convention failed.
                        DecodeError::Convention { content, .. } => content,
                        _ => message,
                    };
                    fields.insert("content".into(), Value::Object(content));
                }
                None => {
                    fields.insert("body".into(), message.body.clone().into());
                }
            }
        }
    }
    (line, false)
}

/// The message object of an SQS body, raw or inside an SNS notification (an object with a
/// `Message` key and no `mediaType`, as the decoder reads it); `None` when it does not parse
/// as a JSON object.
fn salvage(body: &str) -> Option<Map<String, Value>> {
    let Ok(Value::Object(outer)) = serde_json::from_str(body) else { return None };
    if outer.contains_key(MEDIA_TYPE_KEY) {
        return Some(outer);
    }
    match outer.get("Message") {
        Some(Value::String(inner)) => match serde_json::from_str(inner) {
            Ok(Value::Object(inner)) => Some(inner),
            _ => None,
        },
        Some(_) => None,
        None => Some(outer),
    }
}

const MEDIA_TYPE_KEY: &str = "mediaType";
const OPAQUE_DATA_KEY: &str = "opaqueData";

/// Publishes one message per non-blank line of stdin, in batches; a bad line is reported with
/// its number and the others go on.
async fn publish_lines(
    producer: &Producer,
    media_type: &str,
    options: &PublishArgs,
) -> Result<bool, Box<dyn std::error::Error>> {
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
            .and_then(|content| Ok((options.options_for(&content)?, content)))
            .and_then(|(options, content)| {
                UntypedMessage::new(media_type, content).map(|m| (m, options)).map_err(|e| e.to_string())
            })
            .and_then(|(message, options)| {
                message.check_convention().map(|()| (message, options)).map_err(|report| report.to_string())
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
    let mut result = producer.produce_batch_with_options(&messages).await;
    // Lines refused before sending (too large, say) are reported; the others still go.
    if let Err(PublishError::Refused { refused, .. }) = &result {
        let refused: Vec<(usize, String)> = refused.iter().map(|(i, e)| (*i, e.to_string())).collect();
        all_good = false;
        for (index, error) in refused.into_iter().rev() {
            eprintln!("line {}: {error}", lines[index]);
            messages.remove(index);
            lines.remove(index);
        }
        result = producer.produce_batch_with_options(&messages).await;
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
