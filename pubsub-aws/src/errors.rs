//! SDK errors in the transport's terms: what may pass on a retry, and what will not.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use pubsub_core::transport::TransportError;

/// What a missing resource is called in the service's error codes.
pub(crate) enum Resource<'a> {
    Topic(&'a str),
    Queue(&'a str),
}

/// Maps an SDK error. Timeouts, connection failures, throttling and server faults may pass on
/// a retry; a missing topic or queue, or an invalid request, will not.
pub(crate) fn transport_error<E>(error: SdkError<E, HttpResponse>, resource: Resource<'_>) -> TransportError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = describe(&error);
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            TransportError::Unavailable(text)
        }
        SdkError::ConstructionFailure(_) => TransportError::Invalid(text),
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if code.contains("NonExistentQueue") || code == "QueueDoesNotExist" {
                if let Resource::Queue(queue) = resource {
                    return TransportError::QueueNotFound(queue.to_owned());
                }
            }
            if code == "NotFound" || code == "NotFoundException" {
                if let Resource::Topic(topic) = resource {
                    return TransportError::TopicNotFound(topic.to_owned());
                }
            }
            let status = service.raw().status().as_u16();
            if status >= 500
                || code.contains("Throttl")
                || code == "RequestThrottled"
                || code.contains("Unavailable")
            {
                TransportError::Unavailable(text)
            } else {
                TransportError::Invalid(text)
            }
        }
        _ => TransportError::Unavailable(text),
    }
}

/// `code: message`, or the error's own text.
fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
