"""Starts real cfgd daemons for the suite: the binary named by ``CFGD_BIN``
(the cargo test that runs this suite sets it), on ``127.0.0.1:0`` or on a
Unix socket in a temp dir, with temp config and state dirs and an
environment of its own."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
RETRIES = "PREFECT_TASKS_DEFAULT_RETRIES"
T = TypeVar("T")


def _check_installed_client() -> None:
    try:
        import cfgd.v1
    except ImportError as e:
        pytest.exit(f"the cfgd Python client is not installed ({e}): run .ci/deps.sh", returncode=1)
    proto = REPO / "proto" / "proto" / "cfgd" / "v1" / "cfgd.proto"
    if cfgd.v1.PROTO_SHA256 != hashlib.sha256(proto.read_bytes()).hexdigest():
        pytest.exit(
            "the installed cfgd Python client was built from another proto/ than this "
            "checkout's: run .ci/deps.sh (it runs pip install ./python)",
            returncode=1,
        )


_check_installed_client()


class Daemon:
    """One cfgd process; :meth:`restart` keeps its dirs and its address."""

    def __init__(self, root: Path, unix: bool, token: Optional[str] = None) -> None:
        binary = os.environ.get("CFGD_BIN")
        if not binary or not Path(binary).is_file():
            pytest.exit("CFGD_BIN must name the cfgd binary (cargo test -p cfgd sets it)", returncode=1)
        self.binary = binary
        self.root = root
        self.config = root / "config"
        self.config.mkdir()
        self.state = root / "state"
        self.socket = root / "cfgd.sock" if unix else None
        self.endpoint = ""
        self.proc: Optional[subprocess.Popen[str]] = None
        self.port = 0
        self.token = token

    def start(self) -> "Daemon":
        listen = f"unix:{self.socket}" if self.socket else f"127.0.0.1:{self.port}"
        log = open(self.root / "cfgd.log", "a")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": "warn"}
        if self.token:
            env["CFGD_TOKEN"] = self.token
        self.proc = subprocess.Popen(
            [self.binary, "--listen", listen, "--config-dir", str(self.config), "--state-dir", str(self.state)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
        log.close()
        line = within(10, self.proc.stdout.readline)  # type: ignore[union-attr]
        m = re.match(r"cfgd listening on (\S+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"cfgd did not start: {line!r}; see {self.root / 'cfgd.log'}")
        addr = m.group(1)
        self.endpoint = addr if addr.startswith("unix:") else f"http://{addr}"
        if not self.socket:
            self.port = int(addr.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def within(seconds: float, f: Callable[[], T]) -> T:
    """``f()``, failing the test if it takes more than ``seconds`` (a bound
    for a busy machine, not a timing assertion)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(f).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


@pytest.fixture(params=["tcp", "unix"])
def daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon on 127.0.0.1:0, then the same tests on a Unix socket (with
    grpc-core's own default :authority)."""
    d = Daemon(tmp_path, unix=request.param == "unix").start()
    yield d
    d.stop()


@pytest.fixture
def unix_daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path, unix=True).start()
    yield d
    d.stop()


@pytest.fixture
def token_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon whose writes and secrets need the token ``s3cret``."""
    d = Daemon(tmp_path, unix=False, token="s3cret").start()
    yield d
    d.stop()
