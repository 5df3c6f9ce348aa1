"""A local API Gateway (REST, v1): routes from template.yaml, Lambda authorizer first, proxy events in-process."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from infra.local.lambda_runtime import LocalFunction
from infra.local.log import log
from infra.local.resources import ACCOUNT_ID
from infra.local.template import Route

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's own limit
#: The methods a REST API serves (ANY means these); API Gateway refuses any other itself.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
API_ID = "local"


@dataclass(frozen=True)
class Resource:
    """A resource path of the API and the methods declared on it."""

    path: str
    segments: tuple[str, ...]
    methods: dict[str, Route]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.endswith("+}"):
                if i >= len(parts):
                    return None
                params[seg[1:-2]] = "/".join(parts[i:])
                return params
            if i >= len(parts):
                return None
            if seg.startswith("{"):
                params[seg[1:-1]] = parts[i]
            elif seg != parts[i]:
                return None
        return params if len(parts) == len(self.segments) else None

    def rank(self) -> tuple[int, ...]:
        # API Gateway prefers literal segments over {param} over {greedy+}, left to right.
        return tuple(0 if s.endswith("+}") else 1 if s.startswith("{") else 2 for s in self.segments)


def build_resources(routes: list[Route]) -> list[Resource]:
    by_path: dict[str, dict[str, Route]] = {}
    for route in routes:
        by_path.setdefault(route.path, {})[route.method] = route
    resources = [Resource(p, tuple(s for s in p.split("/") if s), m) for p, m in by_path.items()]
    return sorted(resources, key=Resource.rank, reverse=True)


class GatewayError(Exception):
    """A gateway response (UNAUTHORIZED, ...), rendered from the template's GatewayResponses."""

    def __init__(self, kind: str, default_status: int, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.default_status = default_status
        self.message = message


class LocalApiGateway:
    """Serves the template's API routes over HTTP on loopback."""

    def __init__(
        self, routes: list[Route], functions: dict[str, LocalFunction], authorizers: dict[str, str],
        gateway_responses: dict[str, Any], *, region: str = "us-east-1", stage: str = "v1",
        host: str = "127.0.0.1", port: int = 3000,
    ) -> None:
        self.resources = build_resources(routes)
        self.functions = functions
        self.authorizers = authorizers
        self.gateway_responses = gateway_responses
        self.region = region
        self.stage = stage
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-apigw", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- request handling -------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One HTTP request → (status, headers, body)."""
        request_id = str(uuid.uuid4())
        try:
            return self._handle(method, raw_path, headers, body, request_id)
        except GatewayError as exc:
            return self._gateway_response(exc, request_id)
        except Exception:  # noqa: BLE001 - never drop the connection: API Gateway answers a 5xx
            log(f"local API Gateway failed on {method} {raw_path!r}:\n{traceback.format_exc()}")
            return self._gateway_response(GatewayError("DEFAULT_5XX", 502, "Internal server error"), request_id)

    def _handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
                request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if len(body) > MAX_PAYLOAD:
            raise GatewayError("REQUEST_TOO_LARGE", 413, "Request too large")
        # Not urlsplit: `//accounts` is a path here, not a host.
        target, _, query = raw_path.split("#")[0].partition("?")
        requested = unquote(target) or "/"
        path = self._resource_path(requested)
        parts = [p for p in path.split("/") if p]
        if method.upper() not in METHODS:
            return self._method_not_allowed(method.upper(), path, parts, request_id)
        route, params, resource = self._route(method.lower(), parts)
        event = self._proxy_event(method, path, query, headers, body, route, params, resource, request_id,
                                  requested=requested)
        if route.authorizer:
            event["requestContext"]["authorizer"] = self._authorize(route, event)
        try:
            result = self.functions[route.function].invoke(event)
        except Exception as exc:
            log(f"{route.function} failed on {method} {path}:\n{traceback.format_exc()}")
            raise GatewayError("DEFAULT_5XX", 502, "Internal server error") from exc
        return self._proxy_result(result, request_id)

    def _resource_path(self, requested: str) -> str:
        """The resource path of a request: API Gateway's URLs carry the stage (`/v1/accounts`); the local API
        also answers at the root (`/accounts`), as a custom domain without a base path does."""
        prefix = f"/{self.stage}"
        if requested == prefix or requested.startswith(prefix + "/"):
            return requested[len(prefix):] or "/"
        return requested

    def _method_not_allowed(self, method: str, path: str, parts: list[str],
                            request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """A method API Gateway does not serve (TRACE, CONNECT, ...): 405 with `Allow` and the API's error body.
        API Gateway itself never passes these on to a function; see docs/api.md, "Errors"."""
        resource = next((r for r in self.resources if r.match(parts) is not None), None)
        allowed = sorted(m.upper() for m in (resource.methods if resource else {}) if m != "any")
        if not allowed:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
        body = {"code": "method_not_allowed", "message": f"{method} is not allowed on {path}",
                "details": {"allowed": allowed}, "request_id": request_id}
        headers = [("Content-Type", "application/json"), ("Allow", ", ".join(allowed)),
                   ("x-amzn-RequestId", request_id)]
        return 405, headers, json.dumps(body).encode()

    def _route(self, method: str, parts: list[str]) -> tuple[Route, dict[str, str], Resource]:
        for resource in self.resources:
            params = resource.match(parts)
            if params is None:
                continue
            route = resource.methods.get(method) or resource.methods.get("any")
            if route is None:
                break
            return route, params, resource
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")

    def _proxy_event(self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes,
                     route: Route, params: dict[str, str], resource: Resource, request_id: str, *,
                     requested: str = "") -> dict[str, Any]:
        """The proxy event; `requested` is the path as the client sent it (stage included, if it was)."""
        multi_headers: dict[str, list[str]] = {}
        for key, value in headers:
            multi_headers.setdefault(key, []).append(value)
        multi_query = {k: v for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            text: str | None = body.decode("utf-8") if body else None
            is_base64 = False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "resource": resource.path,
            "path": path,
            "httpMethod": method.upper(),
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": resource.path, "resourcePath": resource.path, "httpMethod": method.upper(),
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": requested or path, "accountId": ACCOUNT_ID, "protocol": "HTTP/1.1",
                "stage": self.stage, "domainPrefix": "localhost", "requestTimeEpoch": int(now * 1000),
                "requestId": request_id, "apiId": API_ID, "domainName": "localhost",
                "identity": {"sourceIp": "127.0.0.1", "userAgent": multi_headers.get("User-Agent", [""])[-1]},
            },
            "body": text,
            "isBase64Encoded": is_base64,
        }

    def _authorize(self, route: Route, event: dict[str, Any]) -> dict[str, Any]:
        arn = (f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{API_ID}/{self.stage}/"
               f"{event['httpMethod']}{event['path']}")
        auth_event = {"type": "REQUEST", "methodArn": arn,
                      **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders",
                                                "queryStringParameters", "multiValueQueryStringParameters",
                                                "pathParameters", "stageVariables", "requestContext")}}
        function = self.functions[self.authorizers[route.authorizer or ""]]
        try:
            result = function.invoke(auth_event)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                raise GatewayError("UNAUTHORIZED", 401, "Unauthorized") from None
            log(f"authorizer failed:\n{traceback.format_exc()}")
            raise GatewayError("AUTHORIZER_FAILURE", 500, "Authorizer failure") from exc
        if not _allows(result.get("policyDocument", {}), arn):
            raise GatewayError("ACCESS_DENIED", 403, "User is not authorized to access this resource")
        context = {k: v for k, v in (result.get("context") or {}).items()}
        context["principalId"] = result.get("principalId")
        return context

    @staticmethod
    def _proxy_result(result: Any, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            raise GatewayError("DEFAULT_5XX", 502, "Malformed Lambda proxy response")
        out_headers: list[tuple[str, str]] = []
        for key, value in (result.get("headers") or {}).items():
            out_headers.append((key, str(value)))
        for key, values in (result.get("multiValueHeaders") or {}).items():
            if key not in (result.get("headers") or {}):
                out_headers.extend((key, str(v)) for v in values)
        if not all(_is_header_text(k) and _is_header_text(v) for k, v in out_headers):
            log(f"malformed Lambda proxy response: a header is not latin-1 text on one line: {out_headers!r}")
            raise GatewayError("DEFAULT_5XX", 502, "Malformed Lambda proxy response")
        out_headers.append(("x-amzn-RequestId", request_id))
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), out_headers, payload

    def _gateway_response(self, exc: GatewayError, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        spec = self.gateway_responses.get(exc.kind) or (
            self.gateway_responses.get("DEFAULT_5XX") if exc.default_status >= 500 else
            self.gateway_responses.get("DEFAULT_4XX")) or {}
        status = int(spec.get("StatusCode", exc.default_status))
        template = (spec.get("ResponseTemplates") or {}).get("application/json")
        if template:
            body = (template.replace("$context.requestId", request_id)
                    .replace("$context.error.messageString", json.dumps(exc.message)[1:-1]))
        else:
            body = json.dumps({"message": exc.message})
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id),
                   ("x-amzn-ErrorType", exc.kind)]
        # SAM's ResponseParameters.Headers values are mapping expressions: a quoted literal is the value.
        for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items():
            headers.append((name, str(value).strip("'")))
        return status, headers, body.encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY a keep-alive client waits for its
            # delayed ACK (~40 ms) on every request.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = self.headers.get("Content-Length") or "0"
                if not length.isdigit():
                    self.send_error(400, "Bad Content-Length")
                    return
                body = self.rfile.read(int(length)) if int(length) else b""
                status, headers, payload = gateway.handle(self.command, self.path, list(self.headers.items()), body)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, CONNECT, PROPFIND, ...) is answered too, not http.server's 501 HTML.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _is_header_text(text: str) -> bool:
    """What an HTTP/1.1 header line can carry: latin-1 without CR or LF."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text


def _allows(policy: dict[str, Any], arn: str) -> bool:
    """IAM-style evaluation of an authorizer policy for one method ARN (explicit Deny wins)."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(_arn_pattern(pattern).fullmatch(arn) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _arn_pattern(pattern: str) -> re.Pattern[str]:
    """An IAM resource pattern: `*` is any run of characters, `?` one character, nothing else is special."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)
