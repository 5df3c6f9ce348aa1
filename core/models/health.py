"""`GET /health/details`: the whole stack as the operator (and `wagate doctor`) sees it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class HealthLevel(StrEnum):
    """How bad it is: `ok`, `warning` (look at it soon) or `problem` (something does not work now)."""

    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"

    @property
    def rank(self) -> int:
        return {"ok": 0, "warning": 1, "problem": 2}[self.value]


class Finding(BaseModel):
    """One thing the health rules noticed."""

    level: HealthLevel
    code: str = Field(description="Machine-readable: `dlq_not_empty`, `queue_backlog`, `accounts_stuck`, "
                                  "`no_live_host`, `account_on_dead_host`, `queue_unreadable`, ...")
    message: str


class HostHealth(BaseModel):
    """A registered browser host."""

    host_id: str
    alive: bool = Field(description="Its registration is still being renewed.")
    registered_until: str = Field(description="When its registration expires unless the host renews it "
                                              "(renewals are the host's heartbeat).")
    pid: int | None = None
    accounts: int = Field(description="Accounts the host says it holds.")
    capacity: int = Field(description="Accounts it may hold at most.")
    assigned: int = Field(description="Live accounts whose item names this host (`host_id`).")


class QueueHealth(BaseModel):
    """Depth of one queue, as SQS counts it (approximate)."""

    name: str = Field(description="`control`, `ingress`, `events`, `realtime`, `webhook_retries`, `cloud_outbox`.")
    configured: bool = True
    visible: int = Field(default=0, description="ApproximateNumberOfMessages: waiting to be received.")
    in_flight: int = Field(default=0, description="ApproximateNumberOfMessagesNotVisible: being processed.")
    delayed: int = Field(default=0, description="ApproximateNumberOfMessagesDelayed: e.g. webhook retries waiting.")
    error: str | None = Field(default=None, description="Why it could not be read.")


class DeadLetterSample(BaseModel):
    """A message in a DLQ: when it was sent there and why (never its body)."""

    sent_at: str | None = None
    reason: str | None = Field(default=None, description="The `error_code` or `reason` it was sent with; none when "
                                                          "SQS moved it after too many receives.")


class DeadLetterHealth(BaseModel):
    name: str = Field(description="`ingress`, `events`, `cloud_outbox`.")
    configured: bool = True
    messages: int = Field(default=0, description="Messages in the DLQ (visible and in flight).")
    samples: list[DeadLetterSample] = Field(default_factory=list, description="A few of them, when any.")
    error: str | None = None


class StuckAccount(BaseModel):
    account_id: str
    tenant_id: str
    connection_status: str
    desired_state: str
    pending_action: str | None = None
    since: str = Field(description="When it entered this state (its last status change, or its last request).")
    host_id: str | None = None
    reason: str | None = Field(default=None, description="What looks wrong.")


class AccountsHealth(BaseModel):
    total: int
    by_status: dict[str, int] = Field(description="Live accounts by `connection_status`, every tenant.")
    by_desired_state: dict[str, int]
    pending_deletion: int = Field(description="Deleted accounts a host still has to log out and purge.")
    stuck: list[StuckAccount] = Field(description="Accounts in one state for longer than `HEALTH_STUCK_SECONDS` "
                                                  "(at most 50).")
    truncated: bool = Field(default=False, description="More accounts than one look reads: counts are partial.")


class HealthDetails(BaseModel):
    """`GET /health/details`: everything `wagate doctor` prints."""

    status: HealthLevel = Field(description="The worst level among `findings`.")
    checked_at: str
    findings: list[Finding]
    hosts: list[HostHealth]
    accounts: AccountsHealth
    queues: list[QueueHealth]
    dead_letter_queues: list[DeadLetterHealth]
