"""Consumes messages with microcosm-pubsub's SQS consumer, instrumented with OpenTelemetry's
own Python packages, and handles each inside a span.

    consume.py --queue-url URL --count N [--timeout SECONDS]

What finds the producer's trace context, by delivery:
- raw delivery (the context in the SQS message's attributes): opentelemetry-instrumentation-boto3sqs.
  It asks SQS for the propagator's attributes (microcosm-pubsub asks for none), extracts them
  with the global propagator and makes a `<queue> process` CONSUMER span per message, linked to
  the extracted context; that span is current while the message is handled and ends when the
  message is deleted. (botocore's SQS extension, also on, extracts nothing on receive.)
- enveloped delivery (the context in the SNS notification inside the body): no OpenTelemetry
  package reads it. The envelope strategy below hands the notification's MessageAttributes to
  the global propagator (OpenTelemetry's W3C trace context), and the handler's span is a child
  of what it extracts.

Prints {"messages": [{"message_id", "media_type", "uri"}], "spans": [...]} (see peer.py), once
COUNT messages are handled or TIMEOUT seconds have passed. Talks to AWS_ENDPOINT_URL only.
"""

import argparse
import time
from json import loads

from microcosm.api import create_object_graph
from microcosm.loaders import load_from_dict
from microcosm_pubsub.envelope import CodecMediaTypeAndContentParser, SNSMessageBodyParser, SQSEnvelope
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.boto3sqs import Boto3SQSInstrumentor
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind

from peer import REGION, emit, endpoint, set_up_tracing


class NotificationAttributesGetter(Getter):
    """An SNS notification's MessageAttributes: {"name": {"Type": "String", "Value": "..."}}."""

    def get(self, carrier, key):
        attribute = carrier.get(key)
        if isinstance(attribute, dict) and isinstance(attribute.get("Value"), str):
            return [attribute["Value"]]
        return None

    def keys(self, carrier):
        return list(carrier)


class TraceContextSQSEnvelope(SNSMessageBodyParser, CodecMediaTypeAndContentParser, SQSEnvelope):
    """microcosm-pubsub's default envelope (CodecSQSEnvelope), plus the trace context of the SNS
    notification, as `message.trace_context` (None when the body is no notification or carries
    none). microcosm-pubsub picks strategies among SQSEnvelope's direct subclasses by name."""

    def parse_raw_message(self, consumer, raw_message):
        message = super().parse_raw_message(consumer, raw_message)
        message.trace_context = None
        body = loads(raw_message["Body"])
        attributes = body.get("MessageAttributes") if body.get("Type") == "Notification" else None
        if attributes:
            message.trace_context = propagate.extract(attributes, getter=NotificationAttributesGetter())
        return message


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    exporter = set_up_tracing()
    # Before the graph makes its SQS client: boto3sqs wraps the clients boto3 makes.
    BotocoreInstrumentor().instrument()
    Boto3SQSInstrumentor().instrument()

    graph = create_object_graph(
        "interop_consumer",
        loader=load_from_dict(
            sqs_consumer=dict(
                endpoint_url=endpoint(),
                region_name=REGION,
                sqs_queue_url=args.queue_url,
                wait_seconds=1,
                # Read by the factory, set by microcosm-pubsub's daemon (a Lambda event): none here.
                sqs_event=None,
            ),
            sqs_envelope=dict(strategy_name=TraceContextSQSEnvelope.__name__),
        ),
    )
    graph.use("sqs_consumer")
    graph.lock()

    tracer = trace.get_tracer("interop.consumer")
    handled = []
    deadline = time.monotonic() + args.timeout
    while len(handled) < args.count and time.monotonic() < deadline:
        for message in graph.sqs_consumer.consume():
            # No context of its own: the current one (boto3sqs's process span, under raw delivery).
            with tracer.start_as_current_span(
                f"handle {message.media_type}", context=message.trace_context, kind=SpanKind.CONSUMER
            ):
                handled.append(
                    {"message_id": message.message_id, "media_type": message.media_type, "uri": message.uri}
                )
            message.ack()
    emit(exporter, messages=handled)


if __name__ == "__main__":
    main()
