"""SQS producers: services that put messages on the ingress queue, each bound to a tenant by a signing secret."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PRODUCER_ID_PATTERN = r"^prd_[0-9a-z]{26}$"
# An SQS queue URL: scheme, host, then /<12-digit account>/<queue name> (the service checks the host).
QUEUE_URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$"
QueueUrl = Annotated[str, Field(pattern=QUEUE_URL_PATTERN, max_length=300,
                                examples=["https://sqs.us-east-1.amazonaws.com/123456789012/crm-replies"])]

# SQS message attributes a producer signs its messages with.
PRODUCER_ATTRIBUTE = "wagate-producer"
SIGNATURE_ATTRIBUTE = "wagate-signature"


class ProducerCreate(BaseModel):
    """Body of `POST /producers`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["crm"])
    reply_queue_urls: list[QueueUrl] = Field(
        default_factory=list, max_length=20,
        description="SQS queues this producer may name as `reply_to`: status events of its messages go there.",
    )


class Producer(BaseModel):
    """A registered producer as listed (never the secret)."""

    producer_id: str = Field(examples=["prd_01jd0000000000000000000000"])
    name: str
    tenant_id: str
    reply_queue_urls: list[str] = Field(default_factory=list)
    created_at: str
    created_by: str | None = None


class ProducerCreated(Producer):
    """Answer of `POST /producers`: the only time the signing secret is shown."""

    secret: str = Field(description="HMAC-SHA256 key (its UTF-8 bytes) for the `wagate-signature` attribute.")
