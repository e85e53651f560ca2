"""Publishes one large message with AWS's own extended clients, which offload its body to S3 and
send a pointer in its place: amazon-sns-extended-client to a topic (--topic-arn), or
amazon-sqs-extended-client straight to a queue (--queue-url).

    extended_publish.py --bucket BUCKET (--topic-arn ARN | --queue-url URL) \
        --media-type TYPE --uri URI --size BYTES

The body is a message of ours (`mediaType`, `uri`, and `padding`, as many `x` as make the body
BYTES long), with the `media_type` attribute, as microcosm-pubsub would send it: at BYTES over
256 KiB the client offloads it. Prints {"message_id": ..., "body_size": ...}. Talks to
AWS_ENDPOINT_URL only.
"""

import argparse
import json

import boto3
from botocore.config import Config
from sns_extended_client import SNSExtendedClientSession
from sqs_extended_client import SQSExtendedClientSession

from peer import REGION, endpoint, fail, output


def s3_client():
    """S3 on the emulator, buckets addressed by path (an emulator has no DNS for them)."""
    return boto3.client(
        "s3", endpoint_url=endpoint(), region_name=REGION, config=Config(s3={"addressing_style": "path"})
    )


def body_of(media_type, uri, size):
    """Our message's body, padded to `size` bytes."""
    body = json.dumps({"mediaType": media_type, "uri": uri, "padding": ""}, separators=(",", ":"))
    if size < len(body):
        fail(f"--size {size} is smaller than the message without padding ({len(body)} bytes)")
    return body.replace('"padding":""', '"padding":"' + "x" * (size - len(body)) + '"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", required=True)
    destination = parser.add_mutually_exclusive_group(required=True)
    destination.add_argument("--topic-arn")
    destination.add_argument("--queue-url")
    parser.add_argument("--media-type", required=True)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()

    body = body_of(args.media_type, args.uri, args.size)
    attributes = {"media_type": {"DataType": "String", "StringValue": args.media_type}}
    if args.topic_arn:
        sns = SNSExtendedClientSession(region_name=REGION).client("sns", endpoint_url=endpoint())
        sns.large_payload_support = args.bucket
        sns.s3_client = s3_client()
        response = sns.publish(TopicArn=args.topic_arn, Message=body, MessageAttributes=attributes)
    else:
        sqs = SQSExtendedClientSession(region_name=REGION).client("sqs", endpoint_url=endpoint())
        sqs.large_payload_support = args.bucket
        sqs.s3_client = s3_client()
        response = sqs.send_message(QueueUrl=args.queue_url, MessageBody=body, MessageAttributes=attributes)
    output(message_id=response["MessageId"], body_size=len(body.encode()))


if __name__ == "__main__":
    main()
