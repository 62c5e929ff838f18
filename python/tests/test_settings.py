"""get, snapshot and set against a real daemon, on TCP and on a Unix socket."""

from __future__ import annotations

import grpc
import pytest

from cfgd import (
    MASKED,
    InvalidSettings,
    RevisionConflict,
    Settings,
    Source,
    Unreachable,
)
from conftest import RETRIES, Daemon


def client(d: Daemon) -> Settings:
    # The daemon's address, injected: never the test process's environment.
    return Settings(env={"CFGD_ENDPOINT": d.endpoint})


def test_get_returns_the_typed_value_and_its_source(daemon: Daemon) -> None:
    with client(daemon) as s:
        got = s.get("prefect_task_default_retries")
        assert got.name == RETRIES
        assert got.value == 0 and isinstance(got.value, int)
        assert got.source == Source(layer="defaults")
        key = s.get("PREFECT_API_KEY")
        assert key.secret and key.value is None


def test_snapshot_holds_every_setting_at_one_revision(daemon: Daemon) -> None:
    with client(daemon) as s:
        snap = s.snapshot()
        assert snap.revision == 0 and snap.epoch != 0
        assert snap.active_profile == "default"
        assert RETRIES in snap.settings and len(snap.settings) >= 6
        only = s.snapshot(["PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS"])
        assert list(only.settings) == ["PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"]


def test_an_accepted_set_is_durable_and_typed(daemon: Daemon) -> None:
    with client(daemon) as s:
        result = s.set(
            {
                "PREFECT_TASK_DEFAULT_RETRIES": 3,
                "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS": [1, 10, 100],
                "PREFECT_API_KEY": "hunter2",
            }
        )
        assert result.changed and result.revision == 1 and result.profile == "default"
        given = [(a.given_name, a.name) for a in result.applied]
        assert given[0] == ("PREFECT_TASK_DEFAULT_RETRIES", RETRIES)
        assert result.applied[2].value is MASKED, "a write's answer never shows a secret"
        got = s.get(RETRIES)
        assert got.value == 3
        assert got.source == Source(layer="profile", detail="default")
        assert got.shadowed == ((Source(layer="defaults"), 0),)
        assert s.get("PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS").value == [1.0, 10.0, 100.0]
        assert s.get("PREFECT_API_KEY").value is MASKED
        # The daemon's own parser, as cfg set uses it.
        s.set({"PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS": "5"})
        assert s.get("PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS").value == 5.0


def test_a_refused_set_raises_the_daemons_problems_and_changes_nothing(daemon: Daemon) -> None:
    with client(daemon) as s:
        with pytest.raises(InvalidSettings) as refused:
            s.set(
                {
                    "prefect_task_default_retries": "many",
                    "PREFECT_TASK_DEFAULT_RETRYS": 1,
                    "PREFECT_FLOWS_DEFAULT_RETRIES": -1,
                }
            )
        e = refused.value
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert e.reason == "INVALID_SETTINGS"
        assert [p.kind for p in e.problems] == ["invalid_value", "unknown_name", "invalid_value"]
        bad, unknown, negative = e.problems
        assert (bad.setting, bad.given_name) == (RETRIES, "prefect_task_default_retries")
        assert bad.source == Source(layer="profile", detail="default")
        assert "integer" in bad.expected and "many" in bad.expected
        assert unknown.setting is None
        assert unknown.given_name == "PREFECT_TASK_DEFAULT_RETRYS"
        assert unknown.suggestion == "PREFECT_TASK_DEFAULT_RETRIES"
        assert negative.setting == "PREFECT_FLOWS_DEFAULT_RETRIES"
        assert "-1" in negative.expected
        assert s.get(RETRIES).value == 0
        assert s.snapshot().revision == 0


def test_a_huge_bad_value_still_gets_the_real_error(daemon: Daemon) -> None:
    # The daemon echoed the whole value once: grpc-core then refused the
    # answer's trailers and reported RESOURCE_EXHAUSTED instead.
    with client(daemon) as s:
        with pytest.raises(InvalidSettings) as refused:
            s.set({RETRIES: "x" * 60_000})
        e = refused.value
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert len(e.message) < 1024
        assert e.problems[0].expected.startswith('expected an integer, got "xxx')


def test_compare_and_set_refuses_a_stale_revision(daemon: Daemon) -> None:
    with client(daemon) as s:
        rev = s.snapshot().revision
        assert s.set({RETRIES: 1}, expected_revision=rev).revision == rev + 1
        with pytest.raises(RevisionConflict) as stale:
            s.set({RETRIES: 2}, expected_revision=rev)
        e = stale.value
        assert e.code == grpc.StatusCode.ABORTED
        assert (e.expected_revision, e.current_revision) == (rev, rev + 1)
        assert s.get(RETRIES).value == 1


def test_nothing_listening_is_unreachable_and_transient(tmp_path) -> None:
    with Settings(f"unix:{tmp_path / 'nothing.sock'}", timeout=2) as s:
        with pytest.raises(Unreachable) as e:
            s.get(RETRIES)
        assert e.value.transient
