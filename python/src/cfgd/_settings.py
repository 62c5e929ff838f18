"""The :class:`Settings` client."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import grpc

from cfgd import errors
from cfgd._connect import PathLike, resolve
from cfgd._types import Setting, Snapshot, WriteResult, setting_from_pb, snapshot_from_pb, value_to_pb, write_from_pb
from cfgd._watch import Backoff, Watch
from cfgd.v1 import cfgd_pb2 as pb
from cfgd.v1 import cfgd_pb2_grpc


class Settings:
    """A client of one cfgd daemon.

    The endpoint, token and CA certificate are taken as ``cfg`` takes them:
    from the arguments, else ``CFGD_ENDPOINT``, ``CFGD_TOKEN`` (or
    ``CFGD_TOKEN_FILE``) and ``CFGD_CA_CERT`` in ``env`` (default:
    ``os.environ``). ``timeout`` bounds each call, in seconds.

    Every method raises a :class:`cfgd.errors.CfgdError`:
    :class:`~cfgd.errors.Unreachable` when nothing answers, a
    :class:`~cfgd.errors.Rejected` subclass when the daemon refuses.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        *,
        token: Optional[str] = None,
        token_file: Optional[PathLike] = None,
        ca_cert: Optional[PathLike] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = 10.0,
    ) -> None:
        self._conn = resolve(endpoint, token, token_file, ca_cert, env)
        self._channel = self._conn.channel()
        # The generated stub has no annotations.
        self._stub: Any = cfgd_pb2_grpc.SettingsStub(self._channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout

    @property
    def endpoint(self) -> str:
        """The endpoint this client talks to."""
        return self._conn.endpoint

    def __enter__(self) -> "Settings":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (watches end with it)."""
        self._channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._timeout, metadata=self._conn.metadata())
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, self._conn.endpoint) from None

    def get(self, name: str, *, reveal_secrets: bool = False) -> Setting:
        """One setting, by canonical name or alias (any case): its typed
        value, where it comes from and what it shadows."""
        r = self._call(self._stub.Get, pb.GetRequest(name=name, reveal_secrets=reveal_secrets))
        return setting_from_pb(r.setting)

    def snapshot(
        self, names: Optional[Iterable[str]] = None, *, reveal_secrets: bool = False
    ) -> Snapshot:
        """Every setting (or only ``names``) at one revision, keyed by
        canonical name."""
        request = pb.SnapshotRequest(names=list(names or []), reveal_secrets=reveal_secrets)
        return snapshot_from_pb(self._call(self._stub.Snapshot, request))

    def set(
        self, values: Mapping[str, Any], expected_revision: Optional[int] = None
    ) -> WriteResult:
        """Writes ``values`` into the active profile, all or nothing,
        durable before it returns. A string is parsed by the daemon as
        ``cfg set`` parses it (``"1,10,100"``); ints, floats, bools and lists
        of numbers are sent typed. With ``expected_revision``, only if the
        daemon is still at that revision.

        Raises :class:`~cfgd.errors.InvalidSettings` (its ``problems`` name
        every bad setting) or :class:`~cfgd.errors.RevisionConflict`.
        """
        request = pb.SetRequest(assignments=[value_to_pb(n, v) for n, v in values.items()])
        if expected_revision is not None:
            request.expected_revision = expected_revision
        return write_from_pb(self._call(self._stub.Set, request))

    def unset(
        self, names: Iterable[str], expected_revision: Optional[int] = None
    ) -> WriteResult:
        """Removes ``names`` from the active profile, all or nothing."""
        request = pb.UnsetRequest(names=list(names))
        if expected_revision is not None:
            request.expected_revision = expected_revision
        return write_from_pb(self._call(self._stub.Unset, request))

    def watch(
        self,
        names: Optional[Iterable[str]] = None,
        *,
        reveal_secrets: bool = False,
        after_revision: Optional[int] = None,
        epoch: Optional[int] = None,
        backoff: Optional[Backoff] = None,
    ) -> Watch:
        """Changes as they happen (only to ``names`` when given).

        Without ``after_revision`` the first event is a
        :class:`~cfgd.Resync` with the current state. The watch resumes by
        itself from its last revision and epoch when the stream breaks (a
        daemon restart), so every change is seen exactly once; when the
        daemon cannot replay what was missed, the next event is a
        :class:`~cfgd.Resync` that says why.
        """

        def open_stream(request: pb.WatchRequest) -> Any:
            # wait_for_ready: a daemon that is restarting is waited for.
            return self._stub.Watch(request, metadata=self._conn.metadata(), wait_for_ready=True)

        return Watch(
            open_stream,
            self._conn.endpoint,
            list(names or []),
            reveal_secrets,
            after_revision,
            epoch,
            backoff,
        )
