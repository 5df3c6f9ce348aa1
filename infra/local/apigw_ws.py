"""A local API Gateway WebSocket API: the template's routes over `ws://`, plus the management API
(`POST|GET|DELETE /@connections/{id}`) on the same port, as `post_to_connection` calls it.

Like API Gateway: `$connect` runs before the handshake completes (a non-2xx answer refuses the connection with
that status), each text frame is routed by the route selection expression (`$request.body.action`; not JSON or
no such route: `$default`), and `$disconnect` runs when the connection ends. Functions are invoked in-process
with API Gateway's WebSocket proxy event shape, off the event loop, so a function may post to connections
(its own included) while it runs. A client that vanishes without a close frame is seen as API Gateway sees it:
posts to it answer 410 (GoneException) at once, but `$disconnect` comes only after `dead_peer_seconds` (API
Gateway notices a dead peer late, through its idle timeout), so the fan-out has to cope with stale connections.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from infra.local.lambda_runtime import LocalFunction
from infra.local.log import log
from infra.local.resources import ACCOUNT_ID
from infra.local.template import WebSocketApi

API_ID = "localws"
MAX_FRAME = 32 * 1024  # API Gateway's WebSocket frame limit
SEND_TIMEOUT = 5.0


@dataclass
class _Connection:
    connection_id: str
    ws: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    gone: bool = False


class LocalWebSocketGateway:
    """Serves one WebSocket API of the template on loopback (its own thread and event loop)."""

    def __init__(self, api: WebSocketApi, functions: dict[str, LocalFunction], *, stage: str = "v1",
                 region: str = "us-east-1", host: str = "127.0.0.1", port: int = 3001,
                 dead_peer_seconds: float = 30.0) -> None:
        self.api = api
        self.functions = functions
        self.stage = stage
        self.region = region
        self.host = host
        self.port = port
        self.dead_peer_seconds = dead_peer_seconds
        self.connections: dict[str, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def url(self) -> str:
        """What clients connect to (`?ticket=…` appended)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def management_url(self) -> str:
        """The `@connections` endpoint (boto3's `apigatewaymanagementapi` endpoint_url)."""
        return f"http://{self.host}:{self.port}/{self.stage}"

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="local-apigw-ws", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self.url

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=MAX_FRAME * 4)
        app.router.add_route("*", "/@connections/{connection_id}", self._manage)
        app.router.add_route("*", "/{stage}/@connections/{connection_id}", self._manage)
        app.router.add_get("/{tail:.*}", self._websocket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def _cleanup(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in list(self.connections.values()):
            await connection.ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = None

    # --- the WebSocket side -----------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        connection_id = base64.b64encode(os.urandom(9)).decode()
        source_ip = request.remote or "127.0.0.1"
        user_agent = request.headers.get("User-Agent", "")
        event = self._event("$connect", "CONNECT", connection_id, source_ip, user_agent)
        event.update(_request_parts(request))
        status = await self._invoke("$connect", event)
        if not 200 <= status < 300:
            return web.json_response({"message": "Forbidden" if status == 403 else "Unauthorized"},
                                     status=status if 400 <= status < 600 else 500)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME * 4, autoping=True)
        await ws.prepare(request)
        connection = _Connection(connection_id, ws, source_ip, user_agent)
        self.connections[connection_id] = connection
        async for message in ws:
            connection.last_active_at = time.time()
            if message.type == WSMsgType.TEXT:
                self._spawn(self._route(connection, str(message.data)))
            elif message.type == WSMsgType.BINARY:
                self._spawn(self._route(connection, bytes(message.data).decode("utf-8", "replace")))
        # A close frame from the client ends the loop with its code; a vanished peer leaves 1006 or nothing.
        clean = ws.close_code not in (None, WSCloseCode.ABNORMAL_CLOSURE) and not connection.gone
        connection.gone = True
        if clean or self.dead_peer_seconds <= 0:
            await self._disconnect(connection, ws.close_code or 1005, "client closed")
        else:
            self._spawn(self._disconnect_later(connection))
        return ws

    async def _route(self, connection: _Connection, body: str) -> None:
        route_key = "$default"
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            action = parsed.get(self.api.route_selection.removeprefix("$request.body."))
            if isinstance(action, str) and action in self.api.routes:
                route_key = action
        if route_key not in self.api.routes:
            return  # no $default route: API Gateway drops the message
        event = self._event(route_key, "MESSAGE", connection.connection_id, connection.source_ip,
                            connection.user_agent)
        event.update({"body": body, "isBase64Encoded": False})
        await self._invoke(route_key, event)

    async def _disconnect_later(self, connection: _Connection) -> None:
        await asyncio.sleep(self.dead_peer_seconds)
        await self._disconnect(connection, 1006, "Going away")

    async def _disconnect(self, connection: _Connection, status: int, reason: str) -> None:
        if self.connections.pop(connection.connection_id, None) is None:
            return
        event = self._event("$disconnect", "DISCONNECT", connection.connection_id, connection.source_ip,
                            connection.user_agent)
        event["requestContext"].update({"disconnectStatusCode": status, "disconnectReason": reason})
        event.update({"headers": {"Host": f"{self.host}:{self.port}"}, "isBase64Encoded": False})
        await self._invoke("$disconnect", event)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> int:
        """Run the route's function off the loop; its status code (500 when it failed)."""
        function_id = self.api.routes.get(route_key)
        if function_id is None:
            return 200
        function = self.functions[function_id]
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, function.invoke, event)
        except Exception:  # noqa: BLE001 - like API Gateway: the function's failure is a 500 to the client
            log(f"{function_id} failed on {route_key}:\n{traceback.format_exc()}")
            return 500
        if isinstance(result, dict) and "statusCode" in result:
            return int(result["statusCode"])
        return 200

    def _event(self, route_key: str, event_type: str, connection_id: str, source_ip: str,
               user_agent: str) -> dict[str, Any]:
        now = time.time()
        connection = self.connections.get(connection_id)
        request_id = str(uuid.uuid4())
        return {"requestContext": {
            "routeKey": route_key, "eventType": event_type, "messageDirection": "IN",
            "connectionId": connection_id, "connectedAt": int((connection.connected_at if connection else now) * 1000),
            "requestId": request_id, "extendedRequestId": request_id, "messageId": request_id[:16],
            "requestTimeEpoch": int(now * 1000),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "stage": self.stage, "apiId": API_ID, "domainName": f"{self.host}:{self.port}",
            "accountId": ACCOUNT_ID, "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        }}

    # --- the management API -----------------------------------------------------------------------------------

    async def _manage(self, request: web.Request) -> web.StreamResponse:
        connection = self.connections.get(request.match_info["connection_id"])
        if connection is None or connection.gone or connection.ws.closed:
            return web.json_response({"message": "Gone"}, status=410, headers={"x-amzn-ErrorType": "GoneException"})
        if request.method == "POST":
            data = await request.read()
            if len(data) > 128 * 1024:
                return web.json_response({"message": "Message too long"}, status=413,
                                         headers={"x-amzn-ErrorType": "PayloadTooLargeException"})
            try:
                await asyncio.wait_for(connection.ws.send_str(data.decode("utf-8", "replace")), SEND_TIMEOUT)
            except (TimeoutError, ConnectionError, RuntimeError):
                connection.gone = True
                return web.json_response({"message": "Gone"}, status=410,
                                         headers={"x-amzn-ErrorType": "GoneException"})
            return web.Response(status=200)
        if request.method == "DELETE":
            connection.gone = True
            self._spawn(connection.ws.close(code=WSCloseCode.OK))
            return web.Response(status=204)
        if request.method == "GET":
            return web.json_response({
                "connectedAt": _iso(connection.connected_at), "lastActiveAt": _iso(connection.last_active_at),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent}})
        return web.json_response({"message": "Method not allowed"}, status=405)


def _request_parts(request: web.Request) -> dict[str, Any]:
    headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        headers.setdefault(key, []).append(value)
    query: dict[str, list[str]] = {}
    for key, value in request.query.items():
        query.setdefault(key, []).append(value)
    return {
        "headers": {k: v[-1] for k, v in headers.items()}, "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None, "isBase64Encoded": False,
    }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
