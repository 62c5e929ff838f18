#!/usr/bin/env python3
"""Generates config/prefect/catalog.toml from Prefect's own settings model.

Run with the project's venv (created by .ci/deps.sh, which pins prefect):

    .venv/bin/python tools/prefect-catalog/generate.py          # rewrite the file
    .venv/bin/python tools/prefect-catalog/generate.py --stdout # print it

Every leaf of `prefect.settings.models.root.Settings` becomes one catalogue
entry: its canonical env name, its string aliases (`validation_alias`), its
TOML path (the accessor), a cfgd type with the validation Prefect applies,
its default and its description. A settings field whose type this script
does not know fails the run, so a newer Prefect's new types are noticed.

The output depends only on the Prefect version: the script re-runs itself
without PREFECT_* and SSL_CERT_FILE in the environment (Prefect reads
SSL_CERT_FILE for a default at import) and sorts nothing that Prefect orders.
cfgd's own extension settings live in config/catalog.toml and are never
touched here. A cargo test (settings/tests/prefect_catalog.rs) re-runs this
script and requires the committed file byte for byte.
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import sys
import typing
from pathlib import Path

PREFECT_VERSION = "3.9.1"
OUT = Path(__file__).resolve().parents[2] / "config" / "prefect" / "catalog.toml"

# Environment variables that change what the model says at import.
_AMBIENT = ("SSL_CERT_FILE",)


def _clean_env() -> None:
    dirty = [k for k in os.environ if k.startswith("PREFECT_") or k in _AMBIENT]
    if dirty:
        env = {k: v for k, v in os.environ.items() if k not in dirty}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


_clean_env()

import prefect  # noqa: E402
from prefect.settings.base import PrefectBaseSettings  # noqa: E402
from prefect.settings.models.root import Settings  # noqa: E402
from pydantic import AliasChoices, SecretStr  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402
import annotated_types  # noqa: E402

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Defaults Prefect computes when it builds its settings (from PREFECT_HOME,
# other settings or the environment). cfgd leaves them unset, so `cfg run`
# never freezes them into a child's environment; Prefect computes them there.
COMPUTED = {
    "profiles_path": "$PREFECT_HOME/profiles.toml",
    "logging.config_path": "$PREFECT_HOME/logging.yml",
    "results.local_storage_path": "$PREFECT_HOME/storage",
    "server.memo_store_path": "$PREFECT_HOME/memo_store.toml",
    "ui_url": "derived from PREFECT_API_URL (or the local server's address)",
    "server.ui.api_url": "PREFECT_API_URL, else http://PREFECT_SERVER_API_HOST:PREFECT_SERVER_API_PORT/api",
    "server.database.connection_url": "sqlite+aiosqlite:///$PREFECT_HOME/prefect.db",
    "api.ssl_cert_file": "$SSL_CERT_FILE when Prefect is imported",
}

# Settings `prefect config set` refuses ("Use an environment variable instead").
ENV_ONLY = {"home", "profiles_path"}


class Unknown(Exception):
    pass


def _validators(field) -> list[str]:
    """Names of the before-validators on a field, top level and nested."""
    names = []
    for m in field.metadata:
        func = getattr(m, "func", None)
        if func is not None:
            names.append(getattr(getattr(func, "func", func), "__name__", ""))
    return names


def _bounds(metadata) -> dict:
    out = {}
    for m in metadata:
        for attr, key, exclusive in (
            ("ge", "min", False),
            ("gt", "min", True),
            ("le", "max", False),
            ("lt", "max", True),
        ):
            v = getattr(m, attr, None)
            if v is None or not isinstance(
                m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt)
            ):
                continue
            if isinstance(v, datetime.timedelta):
                v = v.total_seconds()
            out[key] = v
            if exclusive:
                out[f"{key}_exclusive"] = True
    return out


def _strip_optional(ann):
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, getattr(__import__("types"), "UnionType")) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return ann, False


def _status_code_items(ann) -> dict | None:
    """ClientRetryExtraCodes: Union[str, StatusCode, set[StatusCode], None]."""
    for a in typing.get_args(ann):
        if typing.get_origin(a) is set:
            (inner,) = typing.get_args(a)
            if typing.get_origin(inner) is typing.Annotated:
                base, *meta = typing.get_args(inner)
                bounds = {}
                for m in meta:
                    bounds.update(_bounds(getattr(m, "metadata", [m])))
                if base is int:
                    return bounds
    return None


def classify(path: str, field) -> dict:
    """The cfgd type of one Prefect settings field."""
    ann = field.annotation
    validators = _validators(field)
    spec: dict = {}
    if "parse_retry_delay_input" in validators:
        return {"type": "delays", "comma_lists": True}
    if repr(ann) == "typing.Union[int, float, list[float]]":
        return {"type": "delays"}
    if "validate_set_T_from_delim_string" in validators:
        codes = _status_code_items(ann)
        if codes is not None:
            return {"type": "list", "items": "integer", "comma_lists": True, **codes}
        return {"type": "list", "items": "string", "comma_lists": True,
                **({"optional": True} if type(None) in typing.get_args(ann) else {})}
    if "_parse_vacuum_enabled" in validators:
        # A comma list of vacuum types, or true/false: Prefect takes any text.
        return {"type": "string"}
    ann, optional = _strip_optional(ann)
    if optional:
        spec["optional"] = True
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        choices = list(typing.get_args(ann))
        spec.update(type="choice", choices=choices)
        if tuple(choices) == LOG_LEVELS:
            spec["case_insensitive"] = True  # Prefect's LogLevel upper-cases first
        return spec
    if origin in (dict, typing.Dict):
        key, val = typing.get_args(ann)
        if typing.get_origin(val) is typing.Annotated:
            val = typing.get_args(val)[0]
        items = {str: "string", datetime.timedelta: "duration"}.get(val)
        if key is not str or items is None:
            raise Unknown(f"{path}: dict type {ann!r}")
        spec.update(type="json", items=items)
        if "_validate_retention_overrides" in [
            getattr(m, "func", lambda: 0).__name__ for m in field.metadata
        ]:
            spec.update(min=0, min_exclusive=True)
        return spec
    simple = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        SecretStr: "secret",
        Path: "path",
        datetime.timedelta: "duration",
        typing.Any: "string",
    }
    kind = simple.get(ann)
    if kind is None:
        raise Unknown(f"{path}: type {ann!r}")
    if kind == "string" and path.rsplit(".", 1)[-1].endswith("url"):
        kind = "url"
    spec["type"] = kind
    spec.update(_bounds(field.metadata))
    return spec


def default_of(path: str, field, spec: dict):
    if path in COMPUTED:
        return None
    value = field.default
    if value is PydanticUndefined:
        factory = field.default_factory
        if factory in (set, dict, list):
            value = factory()
        else:
            raise Unknown(f"{path}: computed default {factory!r} needs a COMPUTED text")
    if value is None:
        return None
    kind = spec["type"]
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if kind == "duration":
        return value.total_seconds()
    if kind == "json":
        def enc(v):
            return v.total_seconds() if isinstance(v, datetime.timedelta) else v
        return json.dumps({k: enc(v) for k, v in value.items()}, sort_keys=True)
    if kind == "list":
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if kind == "string" and isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    if kind == "path":
        return str(value)
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def leaves(model, path=()):
    for name, field in model.model_fields.items():
        ann = field.annotation
        if inspect.isclass(ann) and issubclass(ann, PrefectBaseSettings):
            yield from leaves(ann, (*path, name))
            continue
        canonical = f"{model.model_config.get('env_prefix')}{name.upper()}"
        aliases = []
        if isinstance(field.validation_alias, AliasChoices):
            for choice in field.validation_alias.choices:
                if isinstance(choice, str) and choice.upper() != canonical and choice.upper() not in aliases:
                    aliases.append(choice.upper())
        yield canonical, aliases, ".".join((*path, name)), field


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def render() -> str:
    if prefect.__version__ != PREFECT_VERSION:
        sys.exit(
            f"generate.py: Prefect {prefect.__version__} is installed; this catalogue is "
            f"Prefect {PREFECT_VERSION}'s (pin it in .ci/requirements.txt and run .ci/deps.sh)"
        )
    out = [
        f"# Prefect {PREFECT_VERSION}'s settings, generated by tools/prefect-catalog/generate.py",
        "# from prefect.settings.models.root.Settings. Do not edit: re-run the script.",
        "# cfgd's own settings are in ../catalog.toml. The fields are those of",
        "# ../catalog.toml, plus: choices, case_insensitive, items, optional,",
        "# min_exclusive/max_exclusive, comma_lists (the profile form Prefect parses),",
        "# computed (a default Prefect derives at import) and env_only.",
        "",
    ]
    for name, aliases, path, field in leaves(Settings):
        spec = classify(path, field)
        default = default_of(path, field, spec)
        out.append("[[settings]]")
        out.append(f"name = {toml_value(name)}")
        if aliases:
            out.append(f"aliases = {toml_value(aliases)}")
        out.append(f"path = {toml_value(path)}")
        out.append(f"type = {toml_value(spec.pop('type'))}")
        for key in ("items", "choices", "case_insensitive", "optional", "min", "min_exclusive",
                    "max", "max_exclusive", "comma_lists"):
            if key in spec:
                out.append(f"{key} = {toml_value(spec.pop(key))}")
        assert not spec, (path, spec)
        if default is not None:
            out.append(f"default = {toml_value(default)}")
        if path in COMPUTED:
            out.append(f"computed = {toml_value(COMPUTED[path])}")
        if path in ENV_ONLY:
            out.append("env_only = true")
        description = " ".join((field.description or "").split())
        out.append(f"description = {toml_value(description)}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    try:
        text = render()
    except Unknown as e:
        sys.exit(f"generate.py: a Prefect setting has a type cfgd cannot map yet: {e}")
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
    else:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
