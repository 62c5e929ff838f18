"""Endpoint, token and TLS, taken as cfg takes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfgd import MASKED, CfgdError, Settings, Unauthenticated
from cfgd._connect import DEFAULT_ENDPOINT, resolve
from conftest import Daemon


def test_endpoints_are_read_as_cfg_reads_them(tmp_path: Path) -> None:
    c = resolve(None, None, None, None, env={})
    assert (c.endpoint, c.target, c.tls, c.token) == (DEFAULT_ENDPOINT, "127.0.0.1:7979", False, None)
    assert resolve("unix:/run/cfgd.sock", None, None, None, env={}).target == "unix:/run/cfgd.sock"
    assert resolve("127.0.0.1:9000", None, None, None, env={}).target == "127.0.0.1:9000"
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    env = {"CFGD_ENDPOINT": "https://cfgd.internal:7979", "CFGD_TOKEN": "t", "CFGD_CA_CERT": str(ca)}
    c = resolve(None, None, None, None, env=env)
    assert (c.target, c.tls, c.token, c.ca_cert) == ("cfgd.internal:7979", True, "t", ca.read_bytes())
    assert c.metadata() == (("authorization", "Bearer t"),)
    # Arguments win over the environment.
    assert resolve("http://127.0.0.1:1", "other", None, None, env=env).token == "other"
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    assert resolve(None, None, None, None, env={"CFGD_TOKEN_FILE": str(token_file)}).token == "from-a-file"


def test_a_bad_endpoint_or_file_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CfgdError, match="expected a URL"):
        resolve("http://host:1/path", None, None, None, env={})
    with pytest.raises(CfgdError, match="expected http://, https:// or unix:"):
        resolve("ftp://host", None, None, None, env={})
    with pytest.raises(CfgdError, match="cannot read the CA certificate"):
        resolve("https://h:1", None, None, tmp_path / "missing.pem", env={})


def test_the_token_comes_from_cfgd_token(token_daemon: Daemon) -> None:
    d = token_daemon
    with Settings(env={"CFGD_ENDPOINT": d.endpoint}) as anonymous:
        with pytest.raises(Unauthenticated) as e:
            anonymous.set({"PREFECT_API_KEY": "hunter2"})
        assert e.value.reason == "UNAUTHENTICATED"
    with Settings(env={"CFGD_ENDPOINT": d.endpoint, "CFGD_TOKEN": "s3cret"}) as s:
        s.set({"PREFECT_API_KEY": "hunter2"})
        assert s.get("PREFECT_API_KEY").value is MASKED
        assert s.get("PREFECT_API_KEY", reveal_secrets=True).value == "hunter2"
