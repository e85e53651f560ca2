"""Receives messages with AWS's own amazon-sqs-extended-client, which reads the body of an
offloaded message from S3 (the pointer's bucket and key), then deletes each message.

    extended_consume.py --queue-url URL --count N [--timeout SECONDS] [--delete-payloads]

Prints {"messages": [{"message_id", "body", "attributes"}]} once COUNT messages are received or
TIMEOUT seconds have passed: `body` is the full body, `attributes` the message attributes'
string values (the client removes its own `ExtendedPayloadSize`). With --delete-payloads the
client deletes each S3 object with its message. Talks to AWS_ENDPOINT_URL only.
"""

import argparse
import time

import boto3
from botocore.config import Config
from sqs_extended_client import SQSExtendedClientSession

from peer import REGION, endpoint, output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--delete-payloads", action="store_true")
    args = parser.parse_args()

    sqs = SQSExtendedClientSession(region_name=REGION).client("sqs", endpoint_url=endpoint())
    # A bucket is needed only to send; reading follows each pointer's own bucket.
    sqs.delete_payload_from_s3 = args.delete_payloads
    sqs.s3_client = boto3.client(
        "s3", endpoint_url=endpoint(), region_name=REGION, config=Config(s3={"addressing_style": "path"})
    )

    messages = []
    deadline = time.monotonic() + args.timeout
    while len(messages) < args.count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=args.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in response.get("Messages", []):
            attributes = {
                name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()
            }
            messages.append({"message_id": message["MessageId"], "body": message["Body"], "attributes": attributes})
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
    output(messages=messages)


if __name__ == "__main__":
    main()
