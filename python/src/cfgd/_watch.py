"""A watch that keeps going: it resumes from its last revision and epoch
whenever the stream breaks (the daemon restarted, the connection dropped),
so no change is missed or seen twice, and says so with a :class:`Resync`
when the daemon cannot replay what it missed."""

from __future__ import annotations

import random
import threading
from typing import Callable, Iterator, List, Optional, Sequence

import grpc

from cfgd import errors
from cfgd._types import Event, event_from_pb
from cfgd.v1 import cfgd_pb2 as pb


class Backoff:
    """Waits between reconnects: exponential with full jitter, from
    ``initial`` up to ``maximum`` seconds, reset by every event received.

    ``rng`` makes the jitter reproducible.
    """

    def __init__(
        self,
        initial: float = 0.05,
        maximum: float = 2.0,
        rng: Optional[random.Random] = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2**self._attempt))
        self._attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self._attempt = 0


class Watch(Iterator[Event]):
    """An iterator of :class:`Change` and :class:`Resync` events.

    ``revision`` and ``epoch`` are those of the last event; :meth:`close`
    (or leaving a ``with`` block) ends it, also from another thread.
    """

    def __init__(
        self,
        open_stream: Callable[[pb.WatchRequest], "grpc.Future"],
        endpoint: str,
        names: Optional[Sequence[str]],
        reveal_secrets: bool,
        after_revision: Optional[int],
        epoch: Optional[int],
        backoff: Optional[Backoff],
    ) -> None:
        self._open_stream = open_stream
        self._endpoint = endpoint
        self._names: List[str] = list(names or [])
        self._reveal = reveal_secrets
        self.revision = after_revision
        self.epoch = epoch
        self._backoff = backoff or Backoff()
        self._call: Optional[grpc.Call] = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> "Watch":
        return self

    def close(self) -> None:
        """Ends the watch: the iterator stops."""
        self._closed.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def _open(self) -> grpc.Call:
        request = pb.WatchRequest(names=self._names, reveal_secrets=self._reveal)
        if self.revision is not None:
            request.after_revision = self.revision
            if self.epoch is not None:
                request.epoch = self.epoch
        with self._lock:
            self._call = self._open_stream(request)
            if self._closed.is_set():
                self._call.cancel()
            return self._call

    def _drop(self) -> None:
        with self._lock:
            self._call = None
        # Wait before reconnecting, unless closed meanwhile.
        self._closed.wait(self._backoff.next_delay())

    def __next__(self) -> Event:
        while not self._closed.is_set():
            call = self._call or self._open()
            try:
                response = next(call)
            except StopIteration:
                # The daemon ended the stream (it is shutting down): resume.
                self._drop()
                continue
            except grpc.RpcError as e:
                if self._closed.is_set():
                    break
                err = errors.from_rpc_error(e, self._endpoint)
                if not err.transient:
                    raise err from None
                self._drop()
                continue
            event = event_from_pb(response)
            if event is None:
                continue  # a kind of event this client does not know
            self._backoff.reset()
            self.revision, self.epoch = event.revision, event.epoch
            return event
        raise StopIteration
