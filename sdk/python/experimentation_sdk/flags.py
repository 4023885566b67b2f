"""Feature flags and experiments in the client: evaluated locally from the config document (kept fresh
by `flag_sync`), remotely at the edge until the first document arrives or when an experiment's
assignments must come from the edge (`"sticky": "remote"`), and the caller's default on any error.
Never raises, never blocks longer than `timeout`."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from experimentation_sdk.evaluation import Assignment, FlagResult, assign, evaluate_flag, exposure_message_id
from experimentation_sdk.flag_config import ConfigStore
from experimentation_sdk.flag_http import FlagHttp, experiment_path, flag_path
from experimentation_sdk.flag_sync import ConfigSync

log = logging.getLogger("experimentation_sdk.flags")
EXPOSURE = "$exposure"
MAX_REMEMBERED_EXPOSURES = 100_000  # past this the memory is cleared; the message_id still dedupes
REMOTE_WORKERS = 4
Track = Callable[..., bool]


def context_of(user_id: str | None, anonymous_id: str | None, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {"attributes": dict(attributes) if attributes else {}}
    if user_id is not None:
        context["user_id"] = user_id
    if anonymous_id is not None:
        context["anonymous_id"] = anonymous_id
    return context


class Flags:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        track: Track,
        *,
        timeout: float = 1.0,
        stream: bool = True,
        poll_interval: float = 30.0,
    ) -> None:
        self.store = ConfigStore()
        self._http = FlagHttp(base_url, api_key)
        self._track = track
        self._timeout = timeout
        self._stream = stream
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._exposed: set[tuple[str, int, str]] = set()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._sync: ConfigSync | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def sync(self) -> ConfigSync | None:
        return self._sync

    def start(self) -> None:
        """Start following the config (done by the first evaluation; call it to fetch ahead)."""
        if self._sync is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's threads are not here
                self._reset()
            if self._sync is None and not self._closed:
                self._sync = ConfigSync(self._http, self.store, stream=self._stream, poll_interval=self._poll_interval)
                self._sync.start()

    def wait_ready(self, timeout: float) -> bool:
        self.start()
        return self.store.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sync, pool = self._sync, self._pool
        if sync is not None:
            sync.stop()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def flag(self, key: str, context: Mapping[str, Any], default: Any) -> FlagResult:
        """The flag's answer; on any error reason ERROR with the caller's default as the value."""
        try:
            self.start()
            snapshot = self.store.current
            if snapshot is None:
                result = self._remote_flag(key, context, default)
            elif key not in snapshot.flags:
                result = FlagResult(key, False, default, "ERROR", error_code="FLAG_NOT_FOUND")
            else:
                result = evaluate_flag(snapshot.flags[key], context)
        except Exception as exc:  # a broken definition or a bug must not reach the caller's request
            log.warning("flag %r: evaluation failed (%s); answering the default", key, exc)
            result = FlagResult(key, False, default, "ERROR", error_code="GENERAL")
        if result.reason == "ERROR":
            return FlagResult(key, False, default, "ERROR", result.variant, result.error_code or "GENERAL")
        return result

    def variant(self, key: str, context: Mapping[str, Any], default: str | None) -> Assignment:
        try:
            self.start()
            snapshot = self.store.current
            experiment = snapshot.experiments.get(key) if snapshot is not None else None
            if snapshot is None or (experiment is not None and experiment.get("sticky") == "remote"):
                assigned = self._remote_assign(key, context)
            elif experiment is None:
                assigned = Assignment(None, "ERROR", "FLAG_NOT_FOUND")
            else:
                assigned = assign(experiment, context)
                if assigned.variant is not None:
                    self._expose(experiment, context, assigned.variant)
        except Exception as exc:
            log.warning("experiment %r: assignment failed (%s); answering the default", key, exc)
            assigned = Assignment(None, "ERROR", "GENERAL")
        if assigned.reason == "ERROR":
            return Assignment(default, "ERROR", assigned.error_code or "GENERAL")
        return assigned

    def _expose(self, experiment: Mapping[str, Any], context: Mapping[str, Any], variant: str) -> None:
        """A local assignment is an exposure: tracked once per unit and experiment by this client, with
        the deterministic message_id so the server stores it once whoever sends it."""
        unit = context.get("user_id") or context.get("anonymous_id")
        version = int(experiment.get("bucket_version", 1))
        seen = (experiment["key"], version, str(unit))
        with self._lock:
            if seen in self._exposed:
                return
            if len(self._exposed) >= MAX_REMEMBERED_EXPOSURES:
                self._exposed.clear()
            self._exposed.add(seen)
        self._track(
            EXPOSURE, user_id=context.get("user_id"), anonymous_id=context.get("anonymous_id"),
            properties={"experiment": experiment["key"], "variant": variant, "bucket_version": version},
            message_id=exposure_message_id(experiment["key"], version, str(unit)),
        )  # fmt: skip

    def _remote_flag(self, key: str, context: Mapping[str, Any], default: Any) -> FlagResult:
        status, body = self._remote(flag_path(key), context)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("reason"), str):
            return FlagResult(
                key, bool(body.get("enabled")), body.get("value"), body["reason"], body.get("variant"),
                body.get("error_code"),
            )  # fmt: skip
        return FlagResult(key, False, default, "ERROR", error_code=_error_code(status, body))

    def _remote_assign(self, key: str, context: Mapping[str, Any]) -> Assignment:
        status, body = self._remote(experiment_path(key), context)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("reason"), str):
            variant = body.get("variant")
            return Assignment(variant if isinstance(variant, str) else None, body["reason"], body.get("error_code"))
        return Assignment(None, "ERROR", _error_code(status, body))

    def _remote(self, path: str, context: Mapping[str, Any]) -> tuple[int, Any]:
        """POST within `timeout` in all: the call runs on a small pool and is abandoned at the deadline."""
        payload = {
            "user_id": context.get("user_id"), "anonymous_id": context.get("anonymous_id"),
            "attributes": context.get("attributes") or {},
        }  # fmt: skip
        future = self._executor().submit(self._http.post_json, path, payload, self._timeout)
        try:
            return future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # still queued behind slow calls: drop it
            return 0, {"code": "TIMEOUT"}
        except Exception as exc:
            log.debug("remote evaluation %s failed: %s", path, exc)
            return 0, {"code": "NETWORK_ERROR"}

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(REMOTE_WORKERS, "experimentation-sdk-eval")
            return self._pool


def _error_code(status: int, body: Any) -> str:
    if status == 404:
        return "FLAG_NOT_FOUND"
    code = body.get("error_code") or body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) and isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
    return code if isinstance(code, str) else f"HTTP_{status}"
