"""Where the daemon is and how to reach it, as ``cfg`` takes it: an
endpoint (``CFGD_ENDPOINT``: ``http://host:port``, ``https://host:port``,
``host:port`` or ``unix:/path``; default ``http://127.0.0.1:7979``), a token
(``CFGD_TOKEN``, or a file named by ``CFGD_TOKEN_FILE``) and, for ``https``,
the CA certificate to trust (``CFGD_CA_CERT``; the system's roots without
one)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

import grpc

from cfgd.errors import CfgdError

#: The endpoint used when none is given.
DEFAULT_ENDPOINT = "http://127.0.0.1:7979"

# A restarted daemon is found within about a second, not grpc's default of
# up to two minutes of reconnect backoff.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    # grpc-core also takes this as each connection attempt's timeout (its
    # "min connect timeout"): at 100 ms a busy machine's daemon could not
    # finish the HTTP/2 handshake in time ("connection attempt timed out
    # before receiving SETTINGS frame"). Reconnects still start after 100 ms.
    ("grpc.min_reconnect_backoff_ms", 5000),
    ("grpc.max_reconnect_backoff_ms", 5000),
    # Answers can be large (a snapshot of a big catalogue).
    ("grpc.max_receive_message_length", -1),
]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Connection:
    """A resolved endpoint: the gRPC target, TLS roots and the token."""

    endpoint: str
    target: str
    tls: bool
    ca_cert: Optional[bytes]
    token: Optional[str]

    def channel(self) -> grpc.Channel:
        if self.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_cert)
            return grpc.secure_channel(self.target, credentials, options=_CHANNEL_OPTIONS)
        return grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)

    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        if self.token:
            return (("authorization", f"Bearer {self.token}"),)
        return ()


def _target(endpoint: str) -> Tuple[str, bool]:
    if endpoint.startswith("unix:"):
        if not endpoint[len("unix:") :].strip("/"):
            raise CfgdError(f"invalid endpoint {endpoint!r}: expected a socket path after 'unix:'")
        return endpoint, False
    for scheme, tls in (("http://", False), ("https://", True)):
        if endpoint.startswith(scheme):
            rest = endpoint[len(scheme) :].rstrip("/")
            if not rest or "/" in rest:
                raise CfgdError(
                    f"invalid endpoint {endpoint!r}: expected a URL such as http://127.0.0.1:7979"
                )
            return rest, tls
    if "://" in endpoint:
        raise CfgdError(
            f"invalid endpoint {endpoint!r}: expected http://, https:// or unix:"
        )
    return endpoint, False


def resolve(
    endpoint: Optional[str],
    token: Optional[str],
    token_file: Optional[PathLike],
    ca_cert: Optional[PathLike],
    env: Optional[Mapping[str, str]],
) -> Connection:
    """Arguments first, then the environment (``env``, default ``os.environ``)."""
    env = os.environ if env is None else env
    endpoint = endpoint or env.get("CFGD_ENDPOINT") or DEFAULT_ENDPOINT
    target, tls = _target(endpoint)
    if token is None:
        token = env.get("CFGD_TOKEN") or None
    token_file = token_file or env.get("CFGD_TOKEN_FILE") or None
    if token is None and token_file is not None:
        try:
            token = Path(token_file).read_text().strip() or None
        except OSError as e:
            raise CfgdError(f"cannot read the token file {token_file}: {e.strerror}") from e
    ca_cert = ca_cert or env.get("CFGD_CA_CERT") or None
    ca: Optional[bytes] = None
    if ca_cert is not None:
        try:
            ca = Path(ca_cert).read_bytes()
        except OSError as e:
            raise CfgdError(f"cannot read the CA certificate {ca_cert}: {e.strerror}") from e
    return Connection(endpoint=endpoint, target=target, tls=tls, ca_cert=ca, token=token)
