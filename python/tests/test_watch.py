"""A watch sees each change once, and keeps going through a daemon restart."""

from __future__ import annotations

import random

from cfgd import Backoff, Change, Resync, Settings
from conftest import RETRIES, Daemon, within


def next_event(watch):
    return within(15, lambda: next(watch))


def test_a_watch_sees_a_set_exactly_once(daemon: Daemon) -> None:
    with Settings(daemon.endpoint) as s, s.watch() as w:
        first = next_event(w)
        assert isinstance(first, Resync) and first.reason == "initial"
        assert first.revision == 0 and RETRIES in first.snapshot.settings
        rev = s.set({"PREFECT_TASK_DEFAULT_RETRIES": 4}).revision
        change = next_event(w)
        assert isinstance(change, Change) and change.revision == rev
        assert change.origin == "set"
        [k] = change.changes
        assert (k.name, k.old_value, k.new_value) == (RETRIES, 0, 4)
        # The next event is the next change, not the same one again.
        other = s.set({"PREFECT_FLOWS_DEFAULT_RETRIES": 1}).revision
        again = next_event(w)
        assert isinstance(again, Change) and again.revision == other == rev + 1


def test_a_watch_keeps_going_through_a_daemon_restart(unix_daemon: Daemon) -> None:
    d = unix_daemon
    writer = Settings(d.endpoint)
    watch = Settings(d.endpoint).watch([RETRIES], backoff=Backoff(rng=random.Random(7)))
    start = next_event(watch)
    assert isinstance(start, Resync)
    seen = []
    revisions = [writer.set({RETRIES: 1}).revision]
    seen.append(next_event(watch))
    epoch = watch.epoch

    d.restart()  # same state dir, same socket
    writer.close()
    writer = Settings(d.endpoint)
    # Changes made before the watch notices the restart are replayed.
    revisions += [writer.set({RETRIES: n}).revision for n in (2, 3)]
    seen += [next_event(watch), next_event(watch)]
    revisions.append(writer.set({RETRIES: 4}).revision)
    seen.append(next_event(watch))

    assert all(isinstance(e, Change) for e in seen), f"no resync was needed: {seen}"
    assert [e.revision for e in seen] == revisions == [1, 2, 3, 4]
    assert [e.changes[0].new_value for e in seen] == [1, 2, 3, 4]
    assert {e.epoch for e in seen} == {epoch}
    assert watch.revision == 4
    watch.close()
    writer.close()


def test_a_watch_reports_a_resync_when_the_daemon_cannot_replay(unix_daemon: Daemon) -> None:
    d = unix_daemon
    with Settings(d.endpoint) as s:
        s.set({RETRIES: 1})
    with Settings(d.endpoint) as s:
        # A revision from another epoch (another state dir): cannot be replayed.
        with s.watch([RETRIES], after_revision=1, epoch=12345) as w:
            e = next_event(w)
            assert isinstance(e, Resync) and e.reason == "epoch"
            assert e.snapshot[RETRIES].value == 1
