"""Starts the local stack: emulator, template resources, the API on HTTP and the SQS mappings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from infra.local import template as tpl
from infra.local.apigw import LocalApiGateway
from infra.local.apigw_ws import LocalWebSocketGateway
from infra.local.emulator import MotoEmulator
from infra.local.lambda_runtime import LocalFunction, load_functions
from infra.local.localstack import LocalStackProcess
from infra.local.resources import Stack, create_resources
from infra.local.scheduler import Scheduler
from infra.local.sqs_mapping import SqsPoller

#: What the local stack lets webhooks and media downloads reach although it is not public: the loopback
#: receivers of `make run` and the tests. A deployment's OutboundAllowHosts parameter is empty.
LOOPBACK_ALLOW_HOSTS = "127.0.0.1,localhost,::1"
#: API_RATE_LIMITS for test suites and benchmarks whose own traffic is not about rate limits (those tests give
#: their keys a rate of their own); `make run` keeps the template's defaults.
GENEROUS_API_RATES = "viewer=5000/20000,operator=5000/20000,admin=5000/20000"


@dataclass
class RuntimeConfig:
    """How to run the stack locally; `endpoint_url=None` starts the embedded moto server (with
    `target="localstack"`: LocalStack from `.venv-localstack`, and moto for DynamoDB only)."""

    endpoint_url: str | None = None
    #: DynamoDB's endpoint when it is not `endpoint_url` (LocalStack without Docker has no DynamoDB); with
    #: `target="localstack"` and none given, the embedded moto server serves DynamoDB.
    dynamodb_endpoint_url: str | None = None
    aws_host: str = "127.0.0.1"
    aws_port: int = 4566
    api_host: str = "127.0.0.1"
    api_port: int = 3000
    #: The template's WebSocket API (and its @connections management API) on this port.
    ws_port: int = 3001
    #: How long a vanished WebSocket client (no close frame) stays known before $disconnect (API Gateway notices
    #: dead peers late); posts to it answer 410 meanwhile.
    ws_dead_peer_seconds: float = 30.0
    region: str = "us-east-1"
    stack_name: str = "wagate"
    target: str = "aws"  # "localstack" builds clients through localstack-client
    poll_wait_seconds: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    with_sim: bool = False
    sim_port: int = 3100
    sim_qr_interval: float = 20.0
    #: moto in a process of its own (behind a TCP gate that can play an outage) instead of a thread.
    emulator_process: bool = False
    #: Run every `Schedule` rule this often instead of its rate (tests: seconds, not minutes).
    schedule_seconds: float | None = None
    #: OUTBOUND_ALLOW_HOSTS of the functions and hosts it starts (see core/net.py).
    outbound_allow_hosts: str = LOOPBACK_ALLOW_HOSTS


def reset_process_caches() -> None:
    """Forget settings, clients and services built from a previous environment."""
    from core.aws import reset_clients
    from core.config import reset_settings
    from functions.service.context import services

    reset_settings()
    reset_clients()
    services.cache_clear()


class LocalRuntime:
    """The whole local control plane in one process (plus moto's thread)."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.template = tpl.load_template()
        self.emulator: MotoEmulator | None = None
        self.localstack: LocalStackProcess | None = None
        self.localstack: LocalStackProcess | None = None
        self.stack: Stack | None = None
        self.api: LocalApiGateway | None = None
        self.ws: LocalWebSocketGateway | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[SqsPoller] = []
        self.schedulers: list[Scheduler] = []
        self.env: dict[str, str] = {}
        self.sim: Any = None

    @property
    def endpoint_url(self) -> str | None:
        if self.config.endpoint_url or self.localstack:
            return self.config.endpoint_url or (self.localstack.url if self.localstack else None)
        return self.emulator.url if self.emulator else None

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint of one AWS service (DynamoDB's differs beside LocalStack)."""
        return (self.dynamodb_endpoint_url if service == "dynamodb" else None) or self.endpoint_url

    @property
    def dynamodb_endpoint_url(self) -> str | None:
        """DynamoDB's endpoint when it differs from `endpoint_url` (LocalStack's target), else None."""
        if self.config.dynamodb_endpoint_url:
            return self.config.dynamodb_endpoint_url
        return self.emulator.url if self.config.target == "localstack" and self.emulator else None

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    @property
    def ws_url(self) -> str:
        """The WebSocket API (`ws://…`; clients add `?ticket=…` from `POST /realtime/tickets`)."""
        assert self.ws is not None
        return self.ws.url

    def start(self) -> LocalRuntime:
        cfg = self.config
        if cfg.target == "localstack" and cfg.endpoint_url is None:
            self.localstack = LocalStackProcess(host=cfg.aws_host).start()
        moto_needed = cfg.dynamodb_endpoint_url is None if cfg.target == "localstack" else cfg.endpoint_url is None
        if moto_needed:
            self.emulator = MotoEmulator(cfg.aws_host, cfg.aws_port, own_process=cfg.emulator_process)
            self.emulator.start()
        # Emulators accept any credentials; real AWS uses the caller's own chain.
        if self.endpoint_url:
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        services = {"dynamodb": self.dynamodb_endpoint_url} if self.dynamodb_endpoint_url else {}
        self.stack = create_resources(self.template, endpoint_url=self.endpoint_url, region=cfg.region,
                                      stack_name=cfg.stack_name, service_endpoints=services)
        self.ws = self._websocket_gateway()
        self.env = self._function_env(self.stack)
        os.environ.update(self.env)
        reset_process_caches()
        self.functions = load_functions(tpl.functions(self.template), cfg.region)
        if self.ws is not None:
            self.ws.functions = self.functions
        self.api = self._api_gateway()
        self.api.start()
        for mapping in tpl.sqs_mappings(self.template):
            poller = SqsPoller(mapping, self.functions[mapping.function], self.stack.refs[mapping.queue],
                               self.stack.attrs[(mapping.queue, "Arn")], region=cfg.region,
                               endpoint_url=self.endpoint_url, wait_seconds=cfg.poll_wait_seconds)
            poller.start()
            self.pollers.append(poller)
        for function_id, seconds in tpl.schedules(self.template):
            scheduler = Scheduler(self.functions[function_id], cfg.schedule_seconds or seconds)
            scheduler.start()
            self.schedulers.append(scheduler)
        if cfg.with_sim:
            from infra.wa_sim import WaSimServer

            self.sim = WaSimServer(port=cfg.sim_port, qr_interval=cfg.sim_qr_interval)
            self.sim.start()
        return self

    def host_env(self) -> dict[str, str]:
        """Environment of a browser host process serving this stack (and the simulator, when it runs)."""
        env = dict(self.env)
        if self.sim is not None:
            env["WAGATE_WA_URL"] = self.sim.url
        # Short inbox polls: moto's long poll costs CPU while it waits (AWS does not need this).
        env.setdefault("HOST_INBOX_WAIT_SECONDS", "1")
        return env

    def _function_env(self, stack: Stack) -> dict[str, str]:
        env = stack.function_environment(self.template)
        env.update({
            "AWS_REGION": self.config.region, "AWS_DEFAULT_REGION": self.config.region,
            "WAGATE_TARGET": self.config.target,
            # No X-Ray daemon or CloudWatch here: keep powertools from trying.
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
            "OUTBOUND_ALLOW_HOSTS": self.config.outbound_allow_hosts,
        })
        for name in ("GRAPH_API_BASE_URL", "GRAPH_API_VERSION"):  # the Cloud API (or a test double) to use
            if os.environ.get(name):
                env[name] = os.environ[name]
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.dynamodb_endpoint_url:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint_url
        if self.dynamodb_endpoint_url:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint_url
        if self.ws is not None:
            env.update({"REALTIME_URL": self.ws.url, "REALTIME_MANAGEMENT_URL": self.ws.management_url})
        env.update(self.config.extra_env)
        return env

    def _websocket_gateway(self) -> LocalWebSocketGateway | None:
        """The template's WebSocket API, started (functions are attached once loaded)."""
        apis = tpl.websocket_apis(self.template)
        if not apis:
            return None
        stage = str(self.stack.resolve({"Ref": "StageName"})) if self.stack else "v1"
        gateway = LocalWebSocketGateway(apis[0], {}, stage=stage, region=self.config.region,
                                        host=self.config.api_host, port=self.config.ws_port,
                                        dead_peer_seconds=self.config.ws_dead_peer_seconds)
        gateway.start()
        return gateway

    def _api_gateway(self) -> LocalApiGateway:
        api_props: dict[str, Any] = next(
            res.get("Properties", {}) for res in self.template["Resources"].values()
            if res.get("Type") == "AWS::Serverless::Api")
        stage = str(self.stack.resolve(api_props.get("StageName", "v1"))) if self.stack else "v1"
        return LocalApiGateway(
            tpl.api_routes(self.template), self.functions, tpl.authorizers(self.template),
            api_props.get("GatewayResponses", {}), region=self.config.region, stage=stage,
            host=self.config.api_host, port=self.config.api_port,
        )

    def stop(self) -> None:
        """Stop what was started, newest first."""
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()
        for scheduler in self.schedulers:
            scheduler.stop()
        self.schedulers.clear()
        if self.api:
            self.api.stop()
            self.api = None
        if self.ws:
            self.ws.stop()
            self.ws = None
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.emulator:
            self.emulator.stop()
            self.emulator = None
        if self.localstack:
            self.localstack.stop()
            self.localstack = None
        if self.localstack:
            self.localstack.stop()
            self.localstack = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
