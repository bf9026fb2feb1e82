"""The Powertools Logger, Metrics and Tracer every function shares.

Request bodies are never logged: they carry trainees' answers and transcripts.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "practice")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Practice"), service=SERVICE)
tracer = Tracer(service=SERVICE)
