"""Invokes Lambda handlers in-process, one invocation at a time per function, like one warm container."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.local.resources import ACCOUNT_ID


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    region: str = "us-east-1"
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_HANDLER_LOCKS: dict[str, threading.Lock] = {}


class LocalFunction:
    """A template function: its handler imported once, invoked under a lock."""

    def __init__(self, logical_id: str, handler: str, timeout: int, memory: int, region: str) -> None:
        self.logical_id = logical_id
        self.handler_path = handler
        self.timeout = timeout
        self.memory = memory
        self.region = region
        # Functions sharing a handler share its module-level state (the resolver): one lock per handler. The REST
        # resolvers (functions.api.*) also share powertools' class-level BaseRouter.current_event, so they share
        # one lock: otherwise a Cloud API route could read a concurrent /accounts request as its own.
        shared = "functions.api" if handler.startswith("functions.api.") else handler
        self._lock = _HANDLER_LOCKS.setdefault(shared, threading.Lock())
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None

    def _load(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._handler is None:
            module_name, _, attr = self.handler_path.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attr)
        return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler with a fresh context; exceptions propagate like a function error."""
        with self._lock:
            handler = self._load()
            context = LambdaContext(function_name=self.logical_id, timeout_seconds=self.timeout,
                                    memory_limit_in_mb=self.memory, region=self.region)
            return handler(event, context)


def load_functions(template_functions: dict[str, dict[str, Any]], region: str) -> dict[str, LocalFunction]:
    """One LocalFunction per template function."""
    return {
        lid: LocalFunction(lid, props["Handler"], int(props.get("Timeout", 3)), int(props.get("MemorySize", 128)),
                           region)
        for lid, props in template_functions.items()
    }
