"""`python -m infra.local` (what `make run` starts): the whole gateway on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from infra.local.host_process import ROOT, HostProcess
from infra.local.log import log
from infra.local.runtime import LocalRuntime, RuntimeConfig

WAJS_BUNDLE = ROOT / "infra" / "wa-js" / "node_modules" / "@wppconnect" / "wa-js" / "dist" / "wppconnect-wa.js"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="Use this AWS endpoint (LocalStack, AWS) instead of starting the embedded moto server")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("WAGATE_AWS_PORT", "4566")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("WAGATE_API_PORT", "3000")))
    parser.add_argument("--ws-port", type=int, default=int(os.environ.get("WAGATE_WS_PORT", "3001")),
                        help="WebSocket API (and its @connections management API)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--stack-name", default=os.environ.get("WAGATE_STACK_NAME", "wagate"))
    parser.add_argument("--target", choices=["aws", "localstack"], default=os.environ.get("WAGATE_TARGET", "aws"))
    parser.add_argument("--sim-port", type=int, default=int(os.environ.get("WAGATE_SIM_PORT", "3100")))
    parser.add_argument("--host-port", type=int, default=int(os.environ.get("HOST_HEALTH_PORT", "8080")),
                        help="health/metrics port of the browser host")
    parser.add_argument("--hosts", type=int, default=int(os.environ.get("WAGATE_HOSTS", "1")),
                        help="browser hosts to start (WAGATE_HOSTS); health on --host-port, +1, +2, ...")
    parser.add_argument("--no-host", action="store_true", help="do not start the browser host")
    parser.add_argument("--wa-url", default=os.environ.get("WAGATE_WA_URL"),
                        help="WhatsApp Web URL for the host (default: the simulator); with the real one, wa-js "
                             "is injected from infra/wa-js")
    return parser.parse_args(argv)


def wait_until_ready(health_url: str, timeout: float = 60.0) -> None:
    """Return once `health_url` answers 200; RuntimeError with its last answer after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health_url, timeout=5) as response:  # noqa: S310 - our loopback API
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{health_url} did not become ready in {timeout:.0f} s: {last}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = RuntimeConfig(endpoint_url=args.endpoint_url or None, aws_port=args.aws_port, api_port=args.api_port,
                           ws_port=args.ws_port,
                           region=args.region, stack_name=args.stack_name, target=args.target,
                           with_sim=not args.wa_url, sim_port=args.sim_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = LocalRuntime(config).start()
    hosts: list[HostProcess] = []
    try:
        from functions.service.api_keys import ensure_bootstrap_key
        from functions.service.context import services

        key, created = ensure_bootstrap_key(services(), os.environ.get("WAGATE_BOOTSTRAP_API_KEY"))
        log(f"AWS endpoint: {runtime.endpoint_url or 'AWS (default credentials chain)'}")
        if runtime.dynamodb_endpoint_url:
            log(f"DynamoDB:     {runtime.dynamodb_endpoint_url}  (moto: LocalStack's needs Docker)")
        log(f"API:          {runtime.api_url}  (Swagger UI: {runtime.api_url}/docs)")
        if runtime.ws is not None:
            log(f"WebSocket:    {runtime.ws_url}  (?ticket= from POST {runtime.api_url}/realtime/tickets)")
        allowed = ", ".join(h for h in config.outbound_allow_hosts.split(",") if h)
        log(f"outbound allow-list: {allowed} (loopback receivers allowed; not in a deployment)")
        if runtime.sim is not None:
            log(f"simulator:    {runtime.sim.url}  (phone: {runtime.sim.url}/phone)")
        if not args.no_host:
            env = runtime.host_env()
            if args.wa_url:
                env.update({"WAGATE_WA_URL": args.wa_url, "WAGATE_WAJS_PATH": str(WAJS_BUNDLE)})
            for index in range(max(1, args.hosts)):
                host = HostProcess(env, health_port=args.host_port + index,
                                   extra_env={"HOST_ID": f"local-host-{index + 1}"})
                hosts.append(host.start(timeout=120))  # returns once the host's /health says ready
                log(f"browser host {index + 1}: {host.health_url}")
        # The banner means "usable now": a script that waits for it (or for /health) may call at once.
        wait_until_ready(f"{runtime.api_url}/health")
        print("", flush=True)
        print(f"  wagate is running at {runtime.api_url}", flush=True)
        if runtime.ws is not None:
            print(f"  WebSocket API: {runtime.ws_url}", flush=True)
        if created:
            print(f"  bootstrap admin API key (shown once): {key}", flush=True)
        else:
            print("  bootstrap admin API key: the value of WAGATE_BOOTSTRAP_API_KEY", flush=True)
        print(f"  try: curl -H 'X-Api-Key: <key>' {runtime.api_url}/accounts", flush=True)
        print("  Ctrl-C stops everything.\n", flush=True)
        stop.wait()
    finally:
        log("stopping")
        for host in hosts:
            host.stop()
        runtime.stop()


if __name__ == "__main__":
    main()
