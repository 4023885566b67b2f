"""EventPlane's Python SDK: `ExperimentationClient` (threads) and `AsyncExperimentationClient` (asyncio).

Modules, one concept each: `events` (one event, checked and encoded), `queue` (bounded), `batch`,
`transport` (HTTP), `retry`, `delivery` (one batch until acknowledged), `accounting` (stats, drop
reports), `spool`, `lifecycle` (exit, fork), `core` (the sender). Feature flags will add a config
fetcher and an evaluator beside them, sharing `transport`.
"""

from __future__ import annotations

from experimentation_sdk._version import __version__
from experimentation_sdk.accounting import Stats
from experimentation_sdk.aio import AsyncExperimentationClient
from experimentation_sdk.client import ExperimentationClient
from experimentation_sdk.errors import DeliveryError

__all__ = ["AsyncExperimentationClient", "DeliveryError", "ExperimentationClient", "Stats", "__version__"]
