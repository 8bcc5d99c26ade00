"""The Bicep templates under infra/ as data: parsed once, with their parameters, variables, resources,
modules and outputs, and the deployment parameter files as azd fills them.

pycep-parser (pinned in requirements-dev.txt) turns a .bicep file into a dict. Identifiers come back
as ``pycep.models.BicepElement`` (a ``str`` subclass), quoted strings as plain ``str``, interpolated
strings as their raw text (``'${name}.blob.${suffix}'``), and a parameter declared without a default
with ``default: None``. :mod:`tests.infra.evaluate` computes the values of expressions.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()


def parse_text(text: str) -> dict[str, Any]:
    """The dict pycep-parser makes of Bicep source; raises on a syntax error."""
    return dict(_parser().parse(text=text))


@functools.cache
def template(relative: str) -> Template:
    """The template at ``infra/<relative>``, parsed once per test session."""
    path = INFRA / relative
    return Template(relative, dict(_parser().parse(file_path=path)))


def bicep_files() -> list[Path]:
    """Every .bicep file of the deployment (not those inside a virtual environment)."""
    return sorted(p for p in INFRA.rglob("*.bicep") if not any(part.startswith(".venv") for part in p.parts))


@dataclass(frozen=True)
class Template:
    relative: str
    doc: dict[str, Any]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.doc.get("parameters") or {}

    @property
    def variables(self) -> dict[str, Any]:
        return self.doc.get("variables") or {}

    @property
    def resources(self) -> dict[str, Any]:
        return self.doc.get("resources") or {}

    @property
    def modules(self) -> dict[str, Any]:
        return self.doc.get("modules") or {}

    @property
    def outputs(self) -> dict[str, Any]:
        return self.doc.get("outputs") or {}

    def module_path(self, name: str) -> str:
        """The module's file relative to infra/ (``modules/identity.bicep``)."""
        target = (INFRA / self.relative).parent / self.modules[name]["detail"]["path"]
        return target.resolve().relative_to(INFRA.resolve()).as_posix()

    def resources_of_type(self, type_: str) -> dict[str, Any]:
        return {name: r for name, r in self.resources.items() if r["type"].lower() == type_.lower()}

    def has_default(self, name: str) -> bool:
        """pycep gives ``default: None`` for a parameter declared without one."""
        return self.parameters[name].get("default") is not None

    def required_parameters(self) -> set[str]:
        return {name for name in self.parameters if not self.has_default(name)}

    def allowed(self, name: str) -> list[Any] | None:
        for decorator in self.parameters[name].get("decorators") or []:
            if decorator.get("type") == "allowed":
                return list(decorator["argument"])
        return None


def body(declaration: dict[str, Any]) -> tuple[dict[str, Any], Any, dict[str, Any] | None]:
    """A resource's or module's ``config`` as (body, condition or None, loop or None)."""
    config = declaration["config"]
    loop = None
    if "loop_type" in config:
        loop, config = config["loop_type"], {"condition": config.get("condition"), "config": config["config"]}
    if set(config) == {"condition", "config"}:
        return config["config"], config["condition"], loop
    return config, None, loop


def strip_key(key: str) -> str:
    """An object key as Bicep means it (pycep keeps the quotes of quoted keys)."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def substitute_azd(value: Any, env: Mapping[str, str]) -> Any:
    """azd's substitution in a parameters file: ``${VAR}`` and ``${VAR=default}``."""
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        return env.get(name) or (default if default is not None else "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(=([^}]*))?\}", one, value)


def parameters_file(relative: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A deployment parameters file's values, after azd's substitution from ``env``, typed as
    main.bicep declares them (azd passes "false" for a bool parameter as false)."""
    data = json.loads((INFRA / relative).read_text())["parameters"]
    main = template("main.bicep")
    values: dict[str, Any] = {}
    for name, entry in data.items():
        value = substitute_azd(entry["value"], env or {})
        declared = main.parameters.get(name, {}).get("type")
        if declared == "bool" and isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{relative}: {name}={value!r} is not a bool")
            value = value.lower() == "true"
        elif declared == "int" and isinstance(value, str):
            value = int(value)
        values[name] = value
    return values


def collect_strings(expr: Any) -> list[str]:
    """Every plain (quoted) string and identifier in a parsed expression, in order."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, dict):
        return [s for v in expr.values() for s in collect_strings(v)]
    if isinstance(expr, list):
        return [s for v in expr for s in collect_strings(v)]
    return []
