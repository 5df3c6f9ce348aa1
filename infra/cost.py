"""What wagate costs on AWS per month, from our measurements and the code's calls per message (docs/deploy.md).

    python -m infra.cost                                   # the table in docs/deploy.md
    python -m infra.cost --numbers 50 --sent 3000 --received 3000 --account-mb 450

Every input is a field below with where it comes from; change one to plug in your own numbers. Prices are AWS
list prices for us-east-1 (x86, on demand, no free tier) as of 2026-12-02; Meta's are per delivered template.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, replace

HOURS = 730  # hours in a month, as AWS bills
SECONDS = HOURS * 3600


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, USD (checked 2026-12-02)."""

    fargate_vcpu_hour: float = 0.04048
    fargate_gb_hour: float = 0.004445
    lambda_request: float = 0.20 / 1e6
    lambda_gb_second: float = 0.0000166667
    apigw_rest_request: float = 3.50 / 1e6  # first 333 M a month
    dynamodb_write_unit: float = 0.625 / 1e6  # on demand, per write request unit (1 KB; transactions 2)
    dynamodb_read_unit: float = 0.125 / 1e6  # per read request unit (4 KB strongly consistent; transactions 2)
    sqs_request: float = 0.40 / 1e6  # standard queue, per 64 KB request
    sns_publish: float = 0.50 / 1e6  # deliveries to SQS are free
    s3_put: float = 0.005 / 1000
    kms_request: float = 0.03 / 10_000
    kms_key_month: float = 1.00
    logs_ingest_gb: float = 0.50
    xray_trace: float = 5.00 / 1e6  # Tracing: Active; the default sampling keeps ~every request at low rates
    alarm_month: float = 0.10
    dashboard_month: float = 3.00
    custom_metric_month: float = 0.30


@dataclass(frozen=True)
class HostModel:
    """How many accounts one browser host task holds, and what the task is."""

    name: str
    account_mb: float  # memory per extra account
    base_mb: float  # the host before any account: Chromium, Playwright's driver, Python
    vcpu: float  # task size (template: BrowserHostCpu / 1024)
    memory_gb: float  # task size (template: BrowserHostMemory / 1024)
    max_accounts: int | None = None  # HOST_MAX_ACCOUNTS when lower than what fits in memory
    min_hosts: int = 2  # BrowserHostDesiredCount: two, so a rolling deploy or a lost task moves accounts

    def capacity(self) -> int:
        """Accounts per host: floor((task memory - base) / per account), capped by max_accounts."""
        fits = math.floor((self.memory_gb * 1024 - self.base_mb) / self.account_mb)
        return max(1, min(fits, self.max_accounts or fits))

    def hosts(self, numbers: int) -> int:
        """ceil(numbers / capacity), at least min_hosts."""
        return max(self.min_hosts, math.ceil(numbers / self.capacity()))


# wa_sim, measured (docs/benchmarks.md, design.md "Measured here"): 200 WORKING accounts in 6.6 GB PSS on one host,
# 29 MB per extra account (so ~800 MB before any), 20 % of one core idle: a 1 vCPU / 8 GB task, capped at the
# 200 measured.
WA_SIM = HostModel("wa_sim, measured", account_mb=29, base_mb=800, vcpu=1, memory_gb=8, max_accounts=200)
# Real WhatsApp Web: 300-500 MB per session reported (not measured here); the template's default task,
# 2 vCPU / 8 GB (its HOST_MAX_ACCOUNTS default of 15 is this model at ~490 MB).
WHATSAPP_WEB_300 = HostModel("WhatsApp Web, 300 MB", account_mb=300, base_mb=800, vcpu=2, memory_gb=8)
WHATSAPP_WEB_500 = HostModel("WhatsApp Web, 500 MB", account_mb=500, base_mb=800, vcpu=2, memory_gb=8)
HOSTS = (WA_SIM, WHATSAPP_WEB_300, WHATSAPP_WEB_500)


@dataclass(frozen=True)
class Lambda:
    """One invocation: memory (MB) and a typical warm duration (ms). Durations are estimates, not measured."""

    memory_mb: int
    duration_ms: float

    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.duration_ms / 1000


@dataclass(frozen=True)
class PerMessage:
    """AWS usage one message causes, counted from the code paths (docs/deploy.md lists them)."""

    apigw_requests: float = 0
    invocations: tuple[Lambda, ...] = ()
    write_units: float = 0
    read_units: float = 0
    sqs_requests: float = 0
    sns_publishes: float = 0
    s3_puts: float = 0
    log_kb: float = 0


API, AUTHORIZER = Lambda(512, 120), Lambda(512, 30)
WEBHOOK, FANOUT = Lambda(512, 150), Lambda(512, 40)  # webhook: mostly waiting for the receiver's answer


def event_usage(events: int, targets: int = 1) -> PerMessage:
    """What `events` published events cost downstream: SNS → the events and realtime queues → WebhookFunction
    (create, claim and record a delivery per target: 3 writes; account and webhooks lookups) and
    RealtimeFanoutFunction (2 replay items; a subscribers query). Unbatched: the low-traffic worst case."""
    return PerMessage(invocations=(WEBHOOK, FANOUT) * events, write_units=events * (3 * targets + 2),
                      read_units=events * 3, sqs_requests=events * 2 * 3, sns_publishes=events)


def plus(a: PerMessage, b: PerMessage) -> PerMessage:
    return PerMessage(a.apigw_requests + b.apigw_requests, a.invocations + b.invocations,
                      a.write_units + b.write_units, a.read_units + b.read_units, a.sqs_requests + b.sqs_requests,
                      a.sns_publishes + b.sns_publishes, a.s3_puts + b.s3_puts, a.log_kb + b.log_kb)


# A text sent through the REST API to a WhatsApp Web number, acked sent, delivered and read (3 events):
# API: authorizer reads the key (1), the account (1); writes the message (1), the audit entry (1), the rate-limit
# bucket (1); nudge (1 SQS). Host: receive + delete the nudge (2 SQS), pending query and the row (3 reads);
# 6 fenced transactions (condition on the lease + the write, 2 items x 2 units): sending, attempt, sent,
# delivered, read, and ~1 refused (docs/benchmarks.md Fleet (c)).
SENT = plus(PerMessage(apigw_requests=1, invocations=(AUTHORIZER, API), write_units=3 + 6 * 4, read_units=2 + 3,
                       sqs_requests=3, log_kb=3), event_usage(3))
# A contact's text: the host stores it in one fenced transaction (4) and updates the contact (1); 1 event.
RECEIVED = plus(PerMessage(write_units=4 + 1, read_units=1, log_kb=1), event_usage(1))


@dataclass(frozen=True)
class Background:
    """What runs whether or not messages flow, per host and per account a month (defaults of HostConfig)."""

    # Per host, every reconcile (2 s): register (1 write), read the hosts item (1 read), 3 queries of accounts
    # needing a host; inbox and control long polls (10 s each).
    host_write_units: float = SECONDS / 2
    host_read_units: float = SECONDS / 2 * 4
    host_sqs_requests: float = SECONDS / 10 * 2
    # Per account: lease renewal every lease_ttl / 3 (10 s), outbox sweep query every 15 s, a snapshot every
    # 300 s while WORKING (S3 PUT + KMS GenerateDataKey).
    account_write_units: float = SECONDS / 10
    account_read_units: float = SECONDS / 15
    account_s3_puts: float = SECONDS / 300
    account_kms_requests: float = SECONDS / 300
    # Lambda's SQS pollers long-poll each queue with a function (ingress, events, realtime, webhook retries,
    # cloud outbox, control dead letters...): ~5 pollers x 3 requests a minute per queue.
    poller_queues: int = 6
    poller_requests_per_queue: float = 5 * 3 * 60 * HOURS
    alarms: int = 15
    dashboards: int = 1
    custom_metrics: int = 20
    kms_keys: int = 1


@dataclass(frozen=True)
class Scenario:
    numbers: int
    sent_per_number: float = 1000  # a month
    received_per_number: float = 1000
    host: HostModel = WA_SIM
    prices: Prices = field(default_factory=Prices)
    background: Background = field(default_factory=Background)


def usage_cost(usage: PerMessage, p: Prices) -> float:
    """USD for one message's usage."""
    return (usage.apigw_requests * p.apigw_rest_request
            + len(usage.invocations) * p.lambda_request
            + sum(i.gb_seconds() for i in usage.invocations) * p.lambda_gb_second
            + usage.write_units * p.dynamodb_write_unit + usage.read_units * p.dynamodb_read_unit
            + usage.sqs_requests * p.sqs_request + usage.sns_publishes * p.sns_publish + usage.s3_puts * p.s3_put
            + usage.log_kb / 1024 / 1024 * p.logs_ingest_gb + len(usage.invocations) * p.xray_trace)


def monthly(s: Scenario) -> dict[str, float]:
    """USD a month by line: fargate, messages (Lambda, API Gateway, DynamoDB, SQS, SNS, logs), background, fixed."""
    p, b, hosts = s.prices, s.background, s.host.hosts(s.numbers)
    fargate = hosts * HOURS * (s.host.vcpu * p.fargate_vcpu_hour + s.host.memory_gb * p.fargate_gb_hour)
    messages = s.numbers * (s.sent_per_number * usage_cost(SENT, p) + s.received_per_number * usage_cost(RECEIVED, p))
    background = (hosts * (b.host_write_units * p.dynamodb_write_unit + b.host_read_units * p.dynamodb_read_unit
                           + b.host_sqs_requests * p.sqs_request)
                  + s.numbers * (b.account_write_units * p.dynamodb_write_unit
                                 + b.account_read_units * p.dynamodb_read_unit
                                 + b.account_s3_puts * p.s3_put + b.account_kms_requests * p.kms_request)
                  + b.poller_queues * b.poller_requests_per_queue * p.sqs_request)
    fixed = (b.alarms * p.alarm_month + b.dashboards * p.dashboard_month + b.custom_metrics * p.custom_metric_month
             + b.kms_keys * p.kms_key_month)
    lines = {"fargate": fargate, "messages": messages, "background": background, "fixed": fixed}
    return {**lines, "total": sum(lines.values()), "hosts": hosts}


@dataclass(frozen=True)
class MetaRates:
    """Meta Cloud API, USD per delivered template message; service (non-template) replies in the 24-hour
    customer service window are free, and so are utility templates sent inside it."""

    market: str
    marketing: float
    utility: float
    authentication: float


# Per-message rates as transcribed from Meta's rate card by third parties (Meta's CSV is the authority; rates
# change quarterly). See docs/deploy.md for sources and dates.
META = (MetaRates("United States", 0.0250, 0.0034, 0.0034), MetaRates("India", 0.0107, 0.0014, 0.0014),
        MetaRates("Brazil", 0.0625, 0.0068, 0.0315))


def meta_monthly(numbers: int, sent_per_number: float, rates: MetaRates, marketing_share: float,
                 utility_outside_window_share: float) -> float:
    """What the same sent messages cost on the Cloud API: received messages and replies inside the window are free."""
    sent = numbers * sent_per_number
    return sent * (marketing_share * rates.marketing + utility_outside_window_share * rates.utility)


def table(numbers: tuple[int, ...] = (10, 100, 1000), sent: float = 1000, received: float = 1000,
          hosts: tuple[HostModel, ...] = HOSTS) -> str:
    """wagate on AWS a month, by host model: hosts and USD."""
    head = ["WhatsApp numbers", *(f"{h.name}: hosts ({h.capacity()} each) | USD/month" for h in hosts)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * (1 + 2 * len(hosts))]
    for n in numbers:
        cells = [f"{n:,}"]
        for h in hosts:
            r = monthly(Scenario(n, sent, received, h))
            cells += [f"{int(r['hosts'])}", f"${r['total']:,.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def meta_table(numbers: tuple[int, ...] = (10, 100, 1000), sent: float = 1000, marketing_share: float = 0.2,
               utility_share: float = 0.3) -> str:
    """Meta's Cloud API for the same sent messages, USD a month by market."""
    head = ["WhatsApp numbers", *(m.market for m in META)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in numbers:
        rows.append("| " + " | ".join([f"{n:,}", *(f"${meta_monthly(n, sent, m, marketing_share, utility_share):,.0f}"
                                                   for m in META)]) + " |")
    return "\n".join(rows)


def breakdown(numbers: int, sent: float, received: float, host: HostModel) -> str:
    r = monthly(Scenario(numbers, sent, received, host))
    return (f"{numbers:,} numbers, {host.name}: {int(r['hosts'])} hosts; Fargate ${r['fargate']:,.2f}, messages "
            f"${r['messages']:,.2f}, background ${r['background']:,.2f}, fixed ${r['fixed']:,.2f}; "
            f"total ${r['total']:,.2f} a month")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--numbers", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--sent", type=float, default=1000, help="messages sent per number a month")
    parser.add_argument("--received", type=float, default=1000, help="messages received per number a month")
    parser.add_argument("--account-mb", type=float, help="add a host model with this memory per account")
    parser.add_argument("--marketing", type=float, default=0.2, help="share of sends that are marketing templates")
    parser.add_argument("--utility", type=float, default=0.3,
                        help="share of sends that are utility templates outside the customer service window")
    args = parser.parse_args(argv)
    hosts = HOSTS
    if args.account_mb:
        hosts += (replace(WHATSAPP_WEB_500, name=f"{args.account_mb:g} MB", account_mb=args.account_mb),)
    numbers = tuple(args.numbers)
    print(table(numbers, args.sent, args.received, hosts))
    print()
    print(meta_table(numbers, args.sent, args.marketing, args.utility))
    print()
    print(f"per sent message ${usage_cost(SENT, Prices()):.8f}, per received ${usage_cost(RECEIVED, Prices()):.8f}")
    for n in numbers:
        for h in hosts:
            print(breakdown(n, args.sent, args.received, h))


if __name__ == "__main__":
    main()
