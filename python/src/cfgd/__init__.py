"""A Python client for cfgd, the settings daemon.

>>> from cfgd import Settings
>>> settings = Settings()                       # CFGD_ENDPOINT, CFGD_TOKEN, CFGD_CA_CERT
>>> settings.get("PREFECT_TASK_DEFAULT_RETRIES").value  # doctest: +SKIP
0

Layout: :class:`Settings` (``_settings``), the value types (``_types``), the
resuming watch (``_watch``), endpoint/token/TLS (``_connect``), errors
(:mod:`cfgd.errors`), and ``cfgd.v1``, the stubs generated from ``proto/``
when the package is built.
"""

from cfgd._connect import DEFAULT_ENDPOINT
from cfgd._settings import Settings
from cfgd._types import (
    MASKED,
    Applied,
    Change,
    Event,
    KeyChange,
    Resync,
    Setting,
    Snapshot,
    Source,
    Value,
    WriteResult,
)
from cfgd._watch import Backoff, Watch
from cfgd.errors import (
    CfgdError,
    InvalidSettings,
    Problem,
    Rejected,
    RevisionConflict,
    ShuttingDown,
    Unauthenticated,
    Unreachable,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "MASKED",
    "Applied",
    "Backoff",
    "CfgdError",
    "Change",
    "Event",
    "InvalidSettings",
    "KeyChange",
    "Problem",
    "Rejected",
    "Resync",
    "RevisionConflict",
    "Setting",
    "Settings",
    "ShuttingDown",
    "Snapshot",
    "Source",
    "Unauthenticated",
    "Unreachable",
    "Value",
    "Watch",
    "WriteResult",
]
