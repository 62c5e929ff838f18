"""Errors, mapped from the daemon's answers in one place (:func:`from_rpc_error`).

The daemon puts a ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer of every refusal: a ``google.rpc.ErrorInfo`` (domain ``cfgd.v1``)
whose ``reason`` says what happened, and, for bad names or values, a
``cfgd.v1.Problems``. The exception class and its fields come from these,
never from the wording of the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cfgd._types import Source, source_from_pb
from cfgd.v1 import cfgd_pb2 as pb

_DOMAIN = "cfgd.v1"

_KINDS = {
    pb.PROBLEM_KIND_UNKNOWN_NAME: "unknown_name",
    pb.PROBLEM_KIND_INVALID_VALUE: "invalid_value",
    pb.PROBLEM_KIND_NOT_IN_PROFILE: "not_in_profile",
    pb.PROBLEM_KIND_LIMIT: "limit",
    pb.PROBLEM_KIND_BAD_REQUEST: "bad_request",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a refused request.

    ``kind`` is ``"unknown_name"``, ``"invalid_value"``, ``"not_in_profile"``,
    ``"limit"`` or ``"bad_request"``. ``setting`` is the canonical name
    (``None`` for an unknown one), ``given_name`` the name as sent, ``source``
    where the refused value came from, ``expected`` what was expected and
    what was given, ``suggestion`` the closest known name.
    """

    kind: str
    setting: Optional[str]
    given_name: str
    source: Optional[Source]
    expected: str
    suggestion: Optional[str]
    message: str

    def __str__(self) -> str:
        return self.message


class CfgdError(Exception):
    """Anything that went wrong talking to cfgd.

    ``code`` is the gRPC status code, ``reason`` the daemon's reason (e.g.
    ``"INVALID_SETTINGS"``; ``None`` when the daemon did not answer), and
    ``transient`` whether the same request may succeed later unchanged.
    """

    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: Mapping[str, str] = dict(metadata or {})


class Unreachable(CfgdError):
    """Nothing answered at the endpoint (or the connection broke)."""

    transient = True


class ShuttingDown(CfgdError):
    """The daemon is shutting down; it, or its successor, will answer soon."""

    transient = True


class Rejected(CfgdError):
    """The daemon refused the request; nothing was changed.

    ``problems`` lists what was wrong, field by field, in request order;
    ``omitted`` counts problems the daemon left out to keep its answer small.
    """

    def __init__(
        self,
        message: str,
        *,
        problems: Optional[List[Problem]] = None,
        omitted: int = 0,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.problems: List[Problem] = list(problems or [])
        self.omitted = omitted


class InvalidSettings(Rejected):
    """Names or values that are not valid, or a request over a limit."""


class RevisionConflict(Rejected):
    """Compare-and-set failed: the daemon is no longer at ``expected_revision``."""

    @property
    def expected_revision(self) -> Optional[int]:
        v = self.metadata.get("expected_revision")
        return int(v) if v is not None else None

    @property
    def current_revision(self) -> Optional[int]:
        v = self.metadata.get("current_revision")
        return int(v) if v is not None else None


class Unauthenticated(Rejected):
    """A token is needed (``CFGD_TOKEN``), or the one given is not the daemon's."""


_BY_REASON = {
    "INVALID_SETTINGS": InvalidSettings,
    "LIMIT": InvalidSettings,
    "BAD_REQUEST": InvalidSettings,
    "REVISION_CONFLICT": RevisionConflict,
    "UNAUTHENTICATED": Unauthenticated,
}


def _problem(p: pb.Problem) -> Problem:
    return Problem(
        kind=_KINDS.get(p.kind, "unknown"),
        setting=p.setting or None,
        given_name=p.given_name,
        source=source_from_pb(p.source) if p.HasField("source") else None,
        expected=p.expected,
        suggestion=p.suggestion or None,
        message=p.message,
    )


def from_rpc_error(e: grpc.RpcError, endpoint: str) -> CfgdError:
    """The error for a failed call to the daemon at ``endpoint``."""
    code = e.code() if isinstance(e, grpc.Call) else None
    message = (e.details() if isinstance(e, grpc.Call) else None) or str(e)
    reason: Optional[str] = None
    metadata: Mapping[str, str] = {}
    problems: List[Problem] = []
    omitted = 0
    try:
        status = rpc_status.from_call(e) if isinstance(e, grpc.Call) else None
    except ValueError:
        status = None  # details that disagree with the status: not the daemon's
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == _DOMAIN:
                reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(pb.Problems.DESCRIPTOR):
            found = pb.Problems()
            detail.Unpack(found)
            problems = [_problem(p) for p in found.problems]
            omitted = found.omitted
    if reason == "SHUTTING_DOWN":
        return ShuttingDown(message, code=code, reason=reason, metadata=metadata)
    if reason is None and code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    ):
        return Unreachable(f"cannot reach cfgd at {endpoint}: {message}", code=code)
    cls = _BY_REASON.get(reason or "", Rejected)
    return cls(
        message,
        code=code,
        reason=reason,
        metadata=metadata,
        problems=problems,
        omitted=omitted,
    )
