"""Publishes one message with microcosm-pubsub's SNS producer, inside a span of this script's
own, with OpenTelemetry's botocore instrumentation on: the instrumentation makes the span of the
SNS Publish call and writes its context into the message's `traceparent` attribute.

    publish.py --topic-arn ARN --media-type TYPE --uri URI

Prints {"message_id": ..., "spans": [...]} (see peer.py). Talks to AWS_ENDPOINT_URL only.
"""

import argparse

from microcosm.api import create_object_graph
from microcosm.loaders import load_from_dict
from opentelemetry import trace
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

from peer import REGION, emit, endpoint, set_up_tracing


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic-arn", required=True)
    parser.add_argument("--media-type", required=True)
    parser.add_argument("--uri", required=True)
    args = parser.parse_args()

    exporter = set_up_tracing()
    # Before the graph makes its SNS client, as an application would at start-up.
    BotocoreInstrumentor().instrument()

    graph = create_object_graph(
        "interop_publisher",
        loader=load_from_dict(
            sns_producer=dict(endpoint_url=endpoint(), region_name=REGION),
            sns_topic_arns=dict(default=args.topic_arn),
        ),
    )
    graph.use("pubsub_message_schema_registry", "sns_topic_arns", "sns_producer")
    graph.lock()

    with trace.get_tracer("interop.publisher").start_as_current_span("interop publish"):
        message_id = graph.sns_producer.produce(args.media_type, uri=args.uri)
    emit(exporter, message_id=message_id)


if __name__ == "__main__":
    main()
