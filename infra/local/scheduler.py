"""Runs the template's `Schedule` events in-process: EventBridge's rate() rules for the local stack."""

from __future__ import annotations

import threading

from infra.local.lambda_runtime import LocalFunction
from infra.local.log import log


class Scheduler:
    """One thread per rule; invokes the function every `seconds` with a scheduled-event payload."""

    def __init__(self, function: LocalFunction, seconds: float) -> None:
        self.function = function
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function.logical_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        while not self._stop.wait(self.seconds):
            try:
                self.function.invoke(event)
            except Exception as exc:  # noqa: BLE001 - a rule keeps firing whatever one run did
                log(f"schedule {self.function.logical_id}: {exc!r}")
