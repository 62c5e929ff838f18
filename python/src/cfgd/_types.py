"""The client's own types, converted from the generated messages in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from cfgd.v1 import cfgd_pb2 as pb


class _Masked:
    """A secret the daemon withheld from this caller (shown as ``********``)."""

    _instance: Optional["_Masked"] = None

    def __new__(cls) -> "_Masked":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MASKED"

    def __str__(self) -> str:
        return "********"


#: The value of a secret the caller may not see in clear.
MASKED = _Masked()

#: A setting's typed value: ``None`` when unset; a delay list is a list of
#: seconds; a single delay a float.
Value = Union[None, int, float, bool, str, List[float], _Masked]

_LAYERS = {
    pb.LAYER_DEFAULTS: "defaults",
    pb.LAYER_PROFILE: "profile",
    pb.LAYER_FILE: "file",
    pb.LAYER_DOTENV: "dotenv",
    pb.LAYER_ENV: "env",
}

_ORIGINS = {
    pb.ORIGIN_SET: "set",
    pb.ORIGIN_UNSET: "unset",
    pb.ORIGIN_FILE: "file",
    pb.ORIGIN_PROFILE: "profile",
    pb.ORIGIN_ROLLBACK: "rollback",
    pb.ORIGIN_STARTUP: "startup",
}

_RESYNC_REASONS = {
    pb.RESYNC_REASON_INITIAL: "initial",
    pb.RESYNC_REASON_COMPACTED: "compacted",
    pb.RESYNC_REASON_LAGGED: "lagged",
    pb.RESYNC_REASON_EPOCH: "epoch",
    pb.RESYNC_REASON_FUTURE: "future",
}


@dataclass(frozen=True)
class Source:
    """Where a value comes from.

    ``layer`` is ``"defaults"``, ``"profile"``, ``"file"``, ``"dotenv"`` or
    ``"env"``; ``file`` and ``line`` are set for files, ``detail`` is the
    profile's name or the variable's.
    """

    layer: str
    file: Optional[str] = None
    line: Optional[int] = None
    detail: Optional[str] = None

    def __str__(self) -> str:
        if self.file is not None:
            where = f"{self.layer} {self.file}"
            return f"{where}, line {self.line}" if self.line else where
        if self.detail is not None:
            return f"{self.layer} '{self.detail}'" if self.layer == "profile" else f"{self.layer} {self.detail}"
        return self.layer


@dataclass(frozen=True)
class Setting:
    """One setting as the daemon resolved it: the effective value, its
    source, and the lower layers it shadows (highest first)."""

    name: str
    value: Value
    source: Source
    shadowed: Tuple[Tuple[Source, Value], ...] = ()
    secret: bool = False


@dataclass(frozen=True)
class Snapshot:
    """Every setting (or those asked for) at one revision."""

    revision: int
    epoch: int
    active_profile: str
    settings: Mapping[str, Setting] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]


@dataclass(frozen=True)
class Applied:
    """One name a write applied: canonical, as given, the value now in the
    profile, and the effective setting afterwards (``effective.source.layer``
    above ``"profile"`` means a higher layer keeps it from taking effect)."""

    name: str
    given_name: str
    value: Value
    effective: Optional[Setting]


@dataclass(frozen=True)
class WriteResult:
    """The answer to a write."""

    revision: int
    epoch: int
    profile: str
    changed: bool
    applied: Tuple[Applied, ...] = ()


@dataclass(frozen=True)
class KeyChange:
    """One setting's effective value before and after a change (``None``
    source: the setting did not exist on that side)."""

    name: str
    old_value: Value
    old_source: Optional[Source]
    new_value: Value
    new_source: Optional[Source]
    secret: bool = False


@dataclass(frozen=True)
class Change:
    """A watch event: one revision's changes (only the watched names)."""

    revision: int
    epoch: int
    time_unix_ms: int
    origin: str
    detail: str
    changes: Tuple[KeyChange, ...]


@dataclass(frozen=True)
class Resync:
    """A watch event: the full state, because changes cannot be replayed.

    ``reason`` is ``"initial"`` (the watch started without a revision),
    ``"compacted"`` (the revision left history), ``"lagged"`` (the watcher
    fell behind), ``"epoch"`` (the daemon's state was started afresh) or
    ``"future"`` (the revision is newer than the daemon's).
    """

    reason: str
    epoch: int
    snapshot: Snapshot

    @property
    def revision(self) -> int:
        return self.snapshot.revision


#: What a watch yields.
Event = Union[Change, Resync]


def value_from_pb(v: Optional[pb.Value]) -> Value:
    if v is None:
        return None
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "masked":
        return MASKED
    if kind == "delays":
        seconds = list(v.delays.seconds)
        if v.delays.list:
            return seconds
        return seconds[0] if seconds else 0.0
    scalar: Value = getattr(v, kind)
    return scalar


def value_to_pb(name: str, value: Any) -> pb.Assignment:
    """An assignment: a string goes to the daemon's parser as typed
    (``"1,10,100"``), anything else as a typed value."""
    if isinstance(value, str):
        return pb.Assignment(name=name, raw=value)
    if isinstance(value, bool):
        typed = pb.Value(boolean=value)
    elif isinstance(value, int):
        typed = pb.Value(integer=value)
    elif isinstance(value, float):
        typed = pb.Value(number=value)
    elif isinstance(value, (list, tuple)):
        typed = pb.Value(delays=pb.Delays(seconds=[float(s) for s in value], list=True))
    else:
        raise TypeError(
            f"{name}: expected a str, int, float, bool or a list of numbers, got {type(value).__name__}"
        )
    return pb.Assignment(name=name, typed=typed)


def source_from_pb(s: pb.Source) -> Source:
    return Source(
        layer=_LAYERS.get(s.layer, "unknown"),
        file=s.file or None,
        line=s.line or None,
        detail=s.detail or None,
    )


def setting_from_pb(r: pb.ResolvedSetting) -> Setting:
    return Setting(
        name=r.name,
        value=value_from_pb(r.value),
        source=source_from_pb(r.source),
        shadowed=tuple((source_from_pb(s.source), value_from_pb(s.value)) for s in r.shadowed),
        secret=r.secret,
    )


def snapshot_from_pb(s: Union[pb.Snapshot, pb.SnapshotResponse]) -> Snapshot:
    settings: Dict[str, Setting] = {r.name: setting_from_pb(r) for r in s.settings}
    return Snapshot(
        revision=s.revision,
        epoch=s.epoch,
        active_profile=s.active_profile,
        settings=settings,
    )


def write_from_pb(w: pb.SetResponse) -> WriteResult:
    return WriteResult(
        revision=w.revision,
        epoch=w.epoch,
        profile=w.profile,
        changed=w.changed,
        applied=tuple(
            Applied(
                name=a.name,
                given_name=a.given_name,
                value=value_from_pb(a.value),
                effective=setting_from_pb(a.effective) if a.HasField("effective") else None,
            )
            for a in w.applied
        ),
    )


def event_from_pb(e: pb.WatchResponse) -> Optional[Event]:
    kind = e.WhichOneof("event")
    if kind == "change":
        c = e.change
        return Change(
            revision=c.revision,
            epoch=e.epoch,
            time_unix_ms=c.time_unix_ms,
            origin=_ORIGINS.get(c.origin, "unknown"),
            detail=c.detail,
            changes=tuple(
                KeyChange(
                    name=k.name,
                    old_value=value_from_pb(k.old_value),
                    old_source=source_from_pb(k.old_source) if k.HasField("old_source") else None,
                    new_value=value_from_pb(k.new_value),
                    new_source=source_from_pb(k.new_source) if k.HasField("new_source") else None,
                    secret=k.secret,
                )
                for k in c.changes
            ),
        )
    if kind == "resync":
        return Resync(
            reason=_RESYNC_REASONS.get(e.resync.reason, "unknown"),
            epoch=e.epoch,
            snapshot=snapshot_from_pb(e.resync.snapshot),
        )
    return None
