"""Builds the cfgd client. Its gRPC stubs (``cfgd.v1``) are generated here,
from the checkout's ``proto/``, every time the package is built: they are
never written by hand or committed."""

import hashlib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO = "cfgd/v1/cfgd.proto"


def proto_root() -> Path:
    """``proto/`` of the checkout, or the copy an sdist carries."""
    for root in (HERE / "proto", HERE.parent / "proto" / "proto"):
        if (root / PROTO).is_file():
            return root
    raise SystemExit(
        f"cfgd: cannot find {PROTO}: build the package from a cfgd checkout "
        "(pip install ./python)"
    )


class BuildPyWithStubs(build_py):
    """``build_py``, then ``protoc`` from grpcio-tools into the build dir."""

    def run(self) -> None:
        super().run()
        import grpc_tools
        from grpc_tools import protoc

        root = proto_root()
        out = Path(self.build_lib)
        includes = Path(grpc_tools.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{includes}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            PROTO,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"cfgd: protoc failed on {root / PROTO}")
        digest = hashlib.sha256((root / PROTO).read_bytes()).hexdigest()
        (out / "cfgd" / "v1" / "__init__.py").write_text(
            f'"""Stubs generated from proto/{PROTO} when the package was built."""\n\n'
            f'#: SHA-256 of the .proto the stubs come from (the test suite checks it).\n'
            f'PROTO_SHA256 = "{digest}"\n'
        )


class SdistWithProto(sdist):
    """An sdist carries the .proto, so a wheel can be built from it."""

    def make_release_tree(self, base_dir: str, files: list) -> None:
        super().make_release_tree(base_dir, files)
        target = Path(base_dir) / "proto" / PROTO
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((proto_root() / PROTO).read_bytes())


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProto})
