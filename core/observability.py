"""The one logger, tracer and metrics object every module imports."""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "wagate")

logger = Logger(service=SERVICE)
# Powertools disables the tracer by itself outside Lambda (and with POWERTOOLS_TRACE_DISABLED).
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "wagate"), service=SERVICE)

# Handlers that only sometimes emit a metric would warn on every quiet invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")
