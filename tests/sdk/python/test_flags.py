"""The SDK's flags against a flag edge on a real socket (tests/sdk/python/flag_server.py): local
evaluation from the config document equals the golden vectors, the stream brings a change within a
second, ETag polling while the stream is down, remote evaluation before the first document or for
remote-sticky experiments, the caller's default on any error within `flag_timeout`, and one `$exposure`
per unit and experiment."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from experimentation_sdk import AsyncExperimentationClient, ExperimentationClient

from tests.sdk.python.flag_server import FlagServer

VECTORS = Path(__file__).parents[3] / "sdk" / "vectors"
EVAL_CASES: list[dict[str, Any]] = json.loads((VECTORS / "evaluation.json").read_text("utf-8"))
FLAG = {"key": "checkout", "enabled": True, "salt": "a1b2c3d4e5f6", "rollout": 100, "rules": [],
        "value_type": "boolean", "default_value": False, "on_value": True, "values": []}  # fmt: skip
EXPERIMENT = {"key": "new-checkout", "status": "running", "salt": "0f1e2d3c4b5a", "bucket_version": 3,
              "allocation": 100, "targeting": {}, "namespace": None, "sticky": "local",
              "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}]}  # fmt: skip


@pytest.fixture
def server() -> Iterator[FlagServer]:
    with FlagServer().running() as running:
        yield running


def client_for(server: FlagServer, **options: Any) -> ExperimentationClient:
    options = {"flag_timeout": 1.0, "flush_at_exit": False, "flush_interval": 0.05, **options}
    return ExperimentationClient("ep_live_test", server.url, **options)


def until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_local_answers_equal_the_golden_vectors(server: FlagServer) -> None:
    server.publish([FLAG])
    client = client_for(server)
    assert client.wait_for_flags(5)
    try:
        for case in EVAL_CASES:
            context = case["context"]
            args = {"user_id": context.get("user_id"), "anonymous_id": context.get("anonymous_id"),
                    "attributes": context.get("attributes")}  # fmt: skip
            if "flag" in case:
                version = server.publish([case["flag"]])
                assert client._flags.store.wait(2, version - 1), "the stream brought the new document"
                got = client.flag_details(case["flag"]["key"], default="caller", **args)
                expected = dict(case["expected"])
                if expected["reason"] == "ERROR":
                    expected["value"] = "caller"  # the SDK answers the caller's default on an error
                assert {"enabled": got.enabled, "value": got.value, "reason": got.reason} == expected, case["name"]
            else:
                version = server.publish([], [case["experiment"]])
                assert client._flags.store.wait(2, version - 1)
                expected_variant = case["expected"]["variant"] if case["expected"]["reason"] != "ERROR" else "dflt"
                assert client.get_variant(case["experiment"]["key"], default="dflt", **args) == expected_variant
        assert not [p for p in server.paths() if "/evaluate" in p or "/assign" in p], "all answered locally"
    finally:
        client.close()


def test_a_change_reaches_a_connected_client_within_a_second(server: FlagServer) -> None:
    server.publish([FLAG])
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        assert client.is_enabled("checkout", user_id="u1")
        assert until(lambda: client._flags.sync is not None and client._flags.sync.streaming)
        server.publish([{**FLAG, "enabled": False}])
        changed = time.monotonic()
        assert until(lambda: not client.is_enabled("checkout", user_id="u1"), timeout=1.0)
        assert time.monotonic() - changed < 1.0
    finally:
        closing = time.monotonic()
        client.close()
    assert time.monotonic() - closing < 0.5, "close() ends the stream at once"
    assert client._flags.sync is not None and not client._flags.sync.streaming


def test_the_stream_reconnects_after_it_drops(server: FlagServer) -> None:
    server.publish([FLAG])
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        assert until(lambda: server.stream_connections == 1)
        server.drop_streams()
        assert until(lambda: server.stream_connections == 2), "reconnected"
        server.publish([{**FLAG, "rollout": 0}])
        assert until(lambda: not client.is_enabled("checkout", user_id="u1"), timeout=2.0)
    finally:
        client.close()


def test_without_the_stream_the_document_is_polled_with_its_etag(server: FlagServer) -> None:
    server.behaviour.stream = False
    server.publish([FLAG])
    client = client_for(server, config_poll_interval=0.1)
    try:
        assert client.wait_for_flags(5)
        assert until(lambda: server.config_answers.count(304) >= 2), "unchanged: 304"
        conditional = [h for m, p, h, _ in server.requests if p == "/api/v1/sdk/config" and "if-none-match" in h]
        assert conditional and all(h["if-none-match"] == server.etag for h in conditional)
        server.publish([{**FLAG, "enabled": False}])
        assert until(lambda: not client.is_enabled("checkout", user_id="u1"), timeout=2.0)
        assert server.config_answers[-1] in (200, 304)
    finally:
        client.close()


def test_before_the_first_document_flags_are_evaluated_remotely(server: FlagServer) -> None:
    server.behaviour.config_status = 503
    server.behaviour.flag_answers["checkout"] = {"key": "checkout", "enabled": True, "value": "blue", "reason": "SPLIT"}
    client = client_for(server)
    try:
        assert client.is_enabled("checkout", user_id="u1", attributes={"plan": "pro"})
        assert client.get_value("checkout", anonymous_id="a1", default="none") == "blue"
        bodies = [b for m, p, _, b in server.requests if p == "/api/v1/feature-flags/checkout/evaluate"]
        assert bodies[0] == {"user_id": "u1", "anonymous_id": None, "attributes": {"plan": "pro"}}
        assert bodies[1] == {"user_id": None, "anonymous_id": "a1", "attributes": {}}
        assert not client.is_enabled("unknown", user_id="u1"), "the edge's 404 gives the default"
        assert client.is_enabled("unknown", user_id="u1", default=True)
    finally:
        client.close()


def test_a_slow_edge_answers_the_default_within_the_timeout(server: FlagServer) -> None:
    server.behaviour.config_status = 503
    server.behaviour.remote_delay = 3.0
    server.behaviour.flag_answers["checkout"] = {"key": "checkout", "enabled": True, "value": True, "reason": "SPLIT"}
    client = client_for(server, flag_timeout=0.2)
    try:
        started = time.monotonic()
        assert client.is_enabled("checkout", user_id="u1", default=True) is True
        assert client.is_enabled("checkout", user_id="u1") is False
        assert client.get_variant("new-checkout", user_id="u1", default="control") == "control"
        assert time.monotonic() - started < 3 * 0.2 + 0.5
    finally:
        client.close()


def test_errors_give_the_callers_default_and_never_raise(server: FlagServer) -> None:
    server.behaviour.config_status = 500
    server.behaviour.remote_status = 500
    client = client_for(server)
    try:
        assert client.is_enabled("checkout", user_id="u1", default=True) is True
        assert client.get_value("checkout", user_id="u1", default={"a": 1}) == {"a": 1}
        assert client.get_variant("new-checkout", user_id="u1", default="control") == "control"
        details = client.flag_details("checkout", user_id="u1", default=7)
        assert (details.value, details.reason, details.error_code) == (7, "ERROR", "BOOM")
    finally:
        client.close()
    dead = ExperimentationClient("ep_live_test", "http://127.0.0.1:9", flush_at_exit=False, flag_timeout=0.3)
    try:
        assert dead.is_enabled("checkout", user_id="u1", default=True) is True
    finally:
        dead.close()


def test_a_broken_definition_gives_the_default(server: FlagServer) -> None:
    server.publish([{"key": "broken", "enabled": True, "rollout": 50, "rules": []}, FLAG])  # no salt
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        assert client.is_enabled("broken", user_id="u1", default=True) is True
        assert client.flag_details("broken", user_id="u1").error_code == "GENERAL"
        assert client.flag_details("missing", user_id="u1").error_code == "FLAG_NOT_FOUND"
        assert client.is_enabled("checkout", user_id="u1")
    finally:
        client.close()


def test_a_local_assignment_is_exposed_once_per_unit(server: FlagServer) -> None:
    server.publish([], [EXPERIMENT])
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        first = client.get_variant("new-checkout", user_id="ada")
        assert first in ("control", "treatment")
        assert [client.get_variant("new-checkout", user_id="ada") for _ in range(3)] == [first] * 3
        client.get_variant("new-checkout", anonymous_id="anon-1")
        assert client.flush(5)
        exposures = [e for e in server.events if e["event_type"] == "$exposure"]
        assert [(e["message_id"], e.get("user_id"), e.get("anonymous_id")) for e in exposures] == [
            ("exp:new-checkout:3:ada", "ada", None), ("exp:new-checkout:3:anon-1", None, "anon-1"),
        ]  # fmt: skip
        assert exposures[0]["properties"] == {"experiment": "new-checkout", "variant": first, "bucket_version": 3}
        assert not [p for p in server.paths() if p.endswith("/assign")]
    finally:
        client.close()


def test_a_remote_sticky_experiment_is_assigned_by_the_edge(server: FlagServer) -> None:
    server.publish([], [{**EXPERIMENT, "sticky": "remote"}])
    server.behaviour.assign_answers["new-checkout"] = {"variant": "treatment", "reason": "STICKY"}
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        assert client.variant_details("new-checkout", user_id="ada").reason == "STICKY"
        assert client.get_variant("new-checkout", user_id="ada") == "treatment"
        assert server.paths().count("/api/v1/experiments/new-checkout/assign") == 2
        assert client.flush(5)
        assert not [e for e in server.events if e["event_type"] == "$exposure"], "the edge records remote ones"
    finally:
        client.close()


def test_long_units_get_a_hashed_exposure_id_within_the_edges_limit(server: FlagServer) -> None:
    server.publish([], [EXPERIMENT])
    client = client_for(server)
    try:
        assert client.wait_for_flags(5)
        client.get_variant("new-checkout", user_id="u" * 200)
        assert client.flush(5)
        (exposure,) = [e for e in server.events if e["event_type"] == "$exposure"]
        assert exposure["message_id"].startswith("exp:") and len(exposure["message_id"]) == 68
    finally:
        client.close()


async def test_the_asyncio_client_answers_locally_without_blocking_the_loop(server: FlagServer) -> None:
    server.behaviour.config_status = 503
    server.behaviour.flag_answers["checkout"] = {"key": "checkout", "enabled": True, "value": True, "reason": "SPLIT"}
    client = AsyncExperimentationClient("ep_live_test", server.url, flush_at_exit=False)
    try:
        assert (await client.flag_details("checkout", user_id="u1")).reason == "SPLIT"  # remote, in a thread
        server.behaviour.config_status = 200
        server.publish([{**FLAG, "rollout": 0}], [EXPERIMENT])
        assert await client.wait_for_flags(5)
        assert await client.is_enabled("checkout", user_id="u1") is False
        assert await client.get_value("checkout", user_id="u1", default="x") is False
        assert await client.get_variant("new-checkout", user_id="ada") in ("control", "treatment")
        assert await client.get_variant("nope", user_id="ada", default="d") == "d"
    finally:
        await client.close()
