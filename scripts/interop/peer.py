"""What the interop scripts share: OpenTelemetry's SDK with an in-memory exporter, the emulator's
endpoint, and the JSON they print for the Rust test (pubsub-aws/tests/otel_interop.rs).

The scripts print one JSON object on standard output and nothing else: whatever the libraries
print goes to standard error.
"""

import json
import os
import sys
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

REGION = "us-east-1"

# The JSON goes to the real standard output; a stray print of a library goes to stderr.
_STDOUT = sys.stdout
sys.stdout = sys.stderr


def fail(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(2)


def endpoint():
    """The emulator's endpoint, from AWS_ENDPOINT_URL; a loopback address only."""
    url = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if not url:
        fail("AWS_ENDPOINT_URL is not set (the SNS/SQS emulator's address)")
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        fail(f"AWS_ENDPOINT_URL={url!r} is not a loopback address")
    return url


def set_up_tracing():
    """The global tracer provider, exporting every span as it ends to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def _span_json(span):
    return {
        "name": span.name,
        "kind": span.kind.name,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "parent_remote": bool(span.parent and span.parent.is_remote),
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
        "attributes": {key: str(value) for key, value in (span.attributes or {}).items()},
    }


def emit(exporter, **fields):
    """Prints `fields` and every finished span as one JSON object."""
    fields["spans"] = [_span_json(span) for span in exporter.get_finished_spans()]
    output(**fields)


def output(**fields):
    """Prints `fields` as one JSON object (the scripts that trace nothing)."""
    json.dump(fields, _STDOUT)
    _STDOUT.write("\n")
    _STDOUT.flush()
