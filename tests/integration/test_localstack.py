"""LocalStack, exercised inside `make test`: `python -m infra.local --target localstack` (LocalStack without Docker
for SQS, S3, KMS and SNS; DynamoDB on moto) accepts a producer's message through SQS, stores media in S3 and keeps
secrets under KMS. `make test-localstack` runs the integration suite itself against LocalStack."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from core.store.secrets import PURPOSE
from functions.service.api_keys import new_key_string
from infra.local.emulator import free_port
from infra.local.harness import Api, sign_ingress, wait_until
from infra.local.localstack import LocalStackMissing, localstack_python
from tests.conftest import ROOT, create_account


@dataclass
class LocalStackRun:
    api: Api
    aws: str  # LocalStack's endpoint
    dynamodb: str  # moto's


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackRun]:
    """`make run`'s process in LocalStack mode, without the browser host; stopped (LocalStack too) afterwards."""
    try:
        localstack_python()
    except LocalStackMissing as exc:  # `make test` installs it first; run alone, say what to run
        pytest.fail(str(exc))
    key = new_key_string()
    ports = {name: free_port() for name in ("aws", "api", "ws", "sim")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "WAGATE_", "HOST_"))}
    env.update({"WAGATE_BOOTSTRAP_API_KEY": key, "WAGATE_TARGET": "localstack", "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--no-host", "--aws-port", str(ports["aws"]),
         "--api-port", str(ports["api"]), "--ws-port", str(ports["ws"]), "--sim-port", str(ports["sim"])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    try:
        wait_until(lambda: any("wagate is running" in line for line in lines) or process.poll() is not None, 90,
                   "the local stack on LocalStack")
        output = "".join(lines)
        assert process.poll() is None, output[-3000:]
        aws = re.search(r"AWS endpoint: (\S+)", output)
        dynamodb = re.search(r"DynamoDB:\s+(\S+)", output)
        assert aws and dynamodb, output[-3000:]
        yield LocalStackRun(Api(f"http://127.0.0.1:{ports['api']}", key), aws.group(1), dynamodb.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _queue(run: LocalStackRun, name: str) -> str:
    """The URL of the stack's queue `name` on LocalStack."""
    sqs = boto3.client("sqs", endpoint_url=run.aws, region_name="us-east-1")
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def test_a_signed_producer_message_through_sqs_on_localstack_is_accepted(stack: LocalStackRun) -> None:
    # Given an account and a producer (its secret stored encrypted by KMS on LocalStack)
    account_id = create_account(stack.api)["account_id"]
    producer_id, secret = stack.api.register_producer("crm")
    body = json.dumps({"account_id": account_id, "to": "15550001111", "type": "text",
                       "text": {"body": "via LocalStack"}})

    # When it puts a signed message on the ingress queue, on LocalStack
    sqs = boto3.client("sqs", endpoint_url=stack.aws, region_name="us-east-1")
    queue = _queue(stack, "wagate-ingress")
    assert queue.startswith(stack.aws), queue
    sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes=sign_ingress(body, producer_id, secret))

    # Then the ingress consumer (its signature checked with the KMS-decrypted secret) queues it for sending
    items = wait_until(lambda: stack.api.get(f"/accounts/{account_id}/messages").json()["items"], 30,
                       "the message accepted")
    assert items[0]["content"]["text"]["body"] == "via LocalStack" and items[0]["status"] == "queued"


def test_media_goes_to_s3_on_localstack_and_comes_back(stack: LocalStackRun) -> None:
    # Given an announced upload, When the bytes are PUT to its presigned URL (LocalStack's S3)
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    ticket = stack.api.post("/media", json={"mime_type": "image/png", "size_bytes": len(data)}).json()
    assert ticket["upload_url"].startswith(stack.aws), ticket["upload_url"]
    assert requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=30).status_code == 200

    # Then the API sees it uploaded and the bucket on LocalStack holds the same bytes
    assert stack.api.get(f"/media/{ticket['id']}").json()["uploaded"] is True
    s3 = boto3.client("s3", endpoint_url=stack.aws, region_name="us-east-1")
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("wagate-media")]
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="media/")["Contents"]
             if o["Key"].endswith(ticket["id"])]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_secrets_are_kms_ciphertext_from_localstack_and_dynamodb_stays_on_moto(stack: LocalStackRun) -> None:
    # Given a producer registered through the API
    producer_id, secret = stack.api.register_producer("kms-check")

    # Then its stored secret (in moto's DynamoDB) is ciphertext that LocalStack's KMS decrypts, bound to its purpose
    table = boto3.resource("dynamodb", endpoint_url=stack.dynamodb, region_name="us-east-1").Table("wagate-producers")
    item: dict[str, Any] = table.get_item(Key={"producer_id": producer_id})["Item"]
    assert secret not in json.dumps(item, default=str)
    kms = boto3.client("kms", endpoint_url=stack.aws, region_name="us-east-1")
    blob = base64.b64decode(item["secret_ciphertext"])
    plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": PURPOSE})["Plaintext"]
    assert plain.decode() == secret
    with pytest.raises(ClientError):  # another purpose does not open it
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "something-else"})
