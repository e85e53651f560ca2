//! What stops a function from starting, and what fails an invocation.

use pubsub_core::handlers::HandlerSetError;

/// Why a Lambda function could not be built or stopped running: all of these happen before
/// any record is handled, or when the Lambda runtime itself fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// The handlers cannot run together (none linked, a duplicate, a missing collaborator).
    #[error(transparent)]
    Handlers(#[from] HandlerSetError),
    /// An environment variable of the function's configuration has a value that cannot be
    /// used.
    #[error("{variable}: {reason}")]
    Config {
        /// The variable, e.g. `EXAMPLE__SNS_TOPIC_ARNS__MAPPINGS`.
        variable: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The Lambda runtime stopped: the Runtime API could not be reached, or it answered what
    /// the runtime could not read.
    #[error("the Lambda runtime stopped: {0}")]
    Runtime(#[source] lambda_runtime::Error),
}

/// Why an invocation failed as a whole: Lambda then retries the whole event (an SQS batch
/// comes back after its visibility timeout; an SNS event is retried by Lambda's asynchronous
/// invocation). Records that failed one by one in an SQS batch never fail the invocation:
/// they are reported as `batchItemFailures`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// The event is neither an SQS nor an SNS event.
    #[error("unsupported event: {0}; this function takes SQS events (an event source mapping) and SNS events (a subscription)")]
    Unsupported(String),
    /// The event says it is an SQS or SNS event but does not have that shape.
    #[error("the {kind} event does not parse: {error}")]
    Malformed {
        /// `SQS` or `SNS`.
        kind: &'static str,
        /// What does not parse.
        #[source]
        error: serde_json::Error,
    },
    /// Records of an SNS event failed (or were not handled before the deadline): the whole
    /// event fails, so that Lambda retries it.
    #[error("{failed} of {total} SNS records failed ({ids}): the invocation fails so that Lambda retries the event")]
    SnsRecordsFailed {
        /// How many records failed.
        failed: usize,
        /// How many records the event held.
        total: usize,
        /// The SNS message ids of the records that failed, comma-separated.
        ids: String,
    },
}

impl InvocationError {
    /// The `errorType` Lambda records for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Unsupported(_) => "UnsupportedEvent",
            InvocationError::Malformed { .. } => "MalformedEvent",
            InvocationError::SnsRecordsFailed { .. } => "SnsRecordsFailed",
        }
    }
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(error: InvocationError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}
