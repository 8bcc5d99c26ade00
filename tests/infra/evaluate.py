"""Values of the expressions in infra/'s templates, computed as ARM would for given parameters.

Two facts shape this module:

* pycep-parser 0.7 has no operator precedence: ``a == b ? x : y`` comes back as ``a == (b ? x : y)``.
  The templates parenthesize comparisons inside larger expressions, and :class:`Scope` is strict
  about operand types (a condition must be a bool, ``==`` compares like with like), so a mis-parse
  fails a test instead of passing it.
* Only what the templates use is implemented; anything else raises :class:`Unsupported`, naming it.

Values known only at deployment (a module's output, a resource's property) evaluate to :class:`Ref`.
The cloud is Azure's public one (:data:`AZURE_CLOUD`), as ``environment()`` returns it there.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pycep.models import BicepElement

from tests.infra.bicep import Template, body, parse_text, strip_key

#: What ``environment()`` returns in Azure's public cloud (the parts the templates read).
AZURE_CLOUD = {
    "name": "AzureCloud",
    "resourceManager": "https://management.azure.com/",
    "suffixes": {"storage": "core.windows.net", "keyvaultDns": ".vault.azure.net", "acrLoginServer": ".azurecr.io"},
}
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
TENANT_ID = "00000000-0000-0000-0000-000000000002"


class Unsupported(Exception):
    """The template uses something this evaluator does not implement (or pycep mis-parsed it)."""


@dataclass(frozen=True)
class Ref:
    """A value known only at deployment, by the path that names it (``identity.outputs.clientId``)."""

    path: str


def _split_interpolation(text: str) -> list[tuple[bool, str]]:
    """``'a${b}c'`` as [(False, 'a'), (True, 'b'), (False, 'c')], braces and quotes matched."""
    parts: list[tuple[bool, str]] = []
    i = start = 0
    while i < len(text):
        if text.startswith("${", i):
            if i > start:
                parts.append((False, text[start:i]))
            depth, j, quoted = 1, i + 2, False
            while depth:
                if j >= len(text):
                    raise Unsupported(f"unbalanced interpolation in {text!r}")
                ch = text[j]
                if ch == "'":
                    quoted = not quoted
                elif not quoted and ch == "{":
                    depth += 1
                elif not quoted and ch == "}":
                    depth -= 1
                j += 1
            parts.append((True, text[i + 2:j - 1]))
            i = start = j
        else:
            i += 1
    if start < len(text):
        parts.append((False, text[start:]))
    return parts


@functools.cache
def _expression(source: str) -> Any:
    return parse_text(f"var expression = {source}\n")["variables"]["expression"]["value"]


def _fake_unique_string(*args: Any) -> str:
    """A stand-in for ``uniqueString``: 13 lowercase characters, the same for the same arguments."""
    digest = hashlib.sha256("|".join(map(str, args)).encode()).hexdigest()
    return "u" + digest[:12]


def _arm_string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Scope:
    """Evaluates expressions of one template with given parameter values (others: their defaults)."""

    template: Template
    params: Mapping[str, Any] = field(default_factory=dict)
    locals: Mapping[str, Any] = field(default_factory=dict)

    def with_locals(self, **names: Any) -> Scope:
        return Scope(self.template, self.params, {**self.locals, **names})

    # -- names -------------------------------------------------------------------------------------
    def name(self, name: str) -> Any:
        t = self.template
        if name in self.locals:
            return self.locals[name]
        if name in t.parameters:
            if name in self.params:
                return self.params[name]
            if not t.has_default(name):
                raise Unsupported(f"{t.relative}: parameter {name} has no value and no default")
            return Scope(t, self.params).value(t.parameters[name]["default"])
        if name in t.variables:
            return Scope(t, self.params).value(t.variables[name]["value"])
        if name in t.modules or name in t.resources:
            return Ref(name)
        raise Unsupported(f"{t.relative}: unknown name {name!r}")

    def variable(self, name: str) -> Any:
        return self.value(self.template.variables[name]["value"])

    # -- values ------------------------------------------------------------------------------------
    def value(self, expr: Any) -> Any:
        if expr is None or isinstance(expr, (bool, int)):
            return expr
        if isinstance(expr, BicepElement):
            return self.name(str(expr))
        if isinstance(expr, str):
            return self.interpolate(expr)
        if isinstance(expr, list):
            return [self.value(item) for item in expr]
        if isinstance(expr, dict):
            if set(expr) == {"function"}:
                return self.call(expr["function"])
            if set(expr) == {"operator"}:
                return self.operate(expr["operator"])
            if "loop_type" in expr:
                return self.loop(expr["loop_type"], expr.get("condition"), expr["config"])
            return {strip_key(k): self.value(v) for k, v in expr.items()}
        raise Unsupported(f"{self.template.relative}: cannot evaluate {expr!r}")

    def interpolate(self, text: str) -> Any:
        parts = [(is_expr, self.value(_expression(piece)) if is_expr else piece)
                 for is_expr, piece in _split_interpolation(text)]
        if any(isinstance(v, Ref) for _, v in parts):
            return Ref("".join(f"${{{v.path}}}" if isinstance(v, Ref) else _arm_string(v) for _, v in parts))
        return "".join(_arm_string(v) if is_expr else v for is_expr, v in parts)

    def loop(self, loop_type: dict[str, Any], condition: Any, config: Any) -> list[Any]:
        detail = loop_type["detail"]
        if loop_type["type"] not in ("array", "array_index") or condition is not None:
            raise Unsupported(f"{self.template.relative}: loop {loop_type['type']} with condition {condition!r}")
        items = self.value(detail["array_name"])
        if not isinstance(items, list):
            raise Unsupported(f"{self.template.relative}: loop over {items!r}")
        out = []
        for index, item in enumerate(items):
            names = {detail["item_name"]: item}
            if "index_name" in detail:
                names[detail["index_name"]] = index
            out.append(self.with_locals(**names).value(config))
        return out

    # -- functions ---------------------------------------------------------------------------------
    def call(self, function: dict[str, Any]) -> Any:
        kind = function["type"]
        raw = [a for a in (function.get("parameters") or {}).values() if a is not None]
        if kind == "environment":
            return AZURE_CLOUD
        if kind == "subscription":
            return {"id": f"/subscriptions/{SUBSCRIPTION_ID}", "subscriptionId": SUBSCRIPTION_ID}
        if kind == "tenant":
            return {"tenantId": TENANT_ID}
        args = [self.value(a) for a in raw]
        if any(isinstance(a, Ref) for a in args) and kind not in ("concat", "union"):
            return Ref(f"{kind}({', '.join(a.path if isinstance(a, Ref) else repr(a) for a in args)})")
        if kind == "empty":
            return args[0] in ("", [], {}, None)
        if kind == "to_lower":
            return self._str(args[0], kind).lower()
        if kind == "replace":
            return self._str(args[0], kind).replace(self._str(args[1], kind), self._str(args[2], kind))
        if kind == "string":
            return _arm_string(args[0])
        if kind == "split":
            return self._str(args[0], kind).split(self._str(args[1], kind))
        if kind == "trim":
            return self._str(args[0], kind).strip()
        if kind == "resource_group":
            return {"resourceGroup": self._str(args[0], kind)}
        if kind == "unique_string":
            return _fake_unique_string(*args)
        if kind == "join":
            if not isinstance(args[0], list):
                raise Unsupported(f"join of {args[0]!r}")
            return self._str(args[1], kind).join(self._str(a, kind) for a in args[0])
        if kind in ("concat", "union"):
            if all(isinstance(a, list) for a in args):
                joined = [item for a in args for item in a]
                return list(dict.fromkeys(map(_hashable, joined)).keys()) if kind == "union" else joined
            if kind == "union" and all(isinstance(a, dict) for a in args):
                return {k: v for a in args for k, v in a.items()}
            if kind == "concat" and all(isinstance(a, str) for a in args):
                return "".join(args)
            raise Unsupported(f"{kind} of {args!r}")
        raise Unsupported(f"{self.template.relative}: function {kind}()")

    @staticmethod
    def _str(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise Unsupported(f"{where}: expected a string, got {value!r} (a mis-parsed expression?)")
        return value

    # -- operators ---------------------------------------------------------------------------------
    def operate(self, operator: dict[str, Any]) -> Any:
        kind, ops = operator["type"], operator["operands"]
        if kind == "conditional":
            return self.value(ops["true_value"] if self._bool(ops["condition"], kind) else ops["false_value"])
        if kind == "not":
            return not self._bool(ops["bool_value"], kind)
        if kind in ("and", "or"):
            left = self._bool(ops["operand_1"], kind)
            if kind == "and" and not left:
                return False
            if kind == "or" and left:
                return True
            return self._bool(ops["operand_2"], kind)
        if kind in ("equals", "not_equals"):
            a, b = self.value(ops["operand_1"]), self.value(ops["operand_2"])
            if type(a) is not type(b) or not isinstance(a, (str, int, bool)):
                raise Unsupported(f"{self.template.relative}: {a!r} {kind} {b!r} (a mis-parsed expression?)")
            return (a == b) == (kind == "equals")
        if kind == "property_accessor":
            return self._access(self.value(ops["operand_1"]), ops["operand_2"])
        if kind == "index_accessor":
            base, index = self.value(ops["operand_1"]), self.value(ops["operand_2"])
            if isinstance(base, Ref):
                return Ref(f"{base.path}[{index}]")
            return base[index]
        raise Unsupported(f"{self.template.relative}: operator {kind}")

    def _bool(self, expr: Any, where: str) -> bool:
        value = self.value(expr)
        if not isinstance(value, bool):
            raise Unsupported(f"{self.template.relative}: {where} needs a bool, got {value!r} (a mis-parsed "
                              "expression? parenthesize the comparison)")
        return value

    def _access(self, base: Any, accessor: Any) -> Any:
        if isinstance(accessor, dict) and accessor.get("operator", {}).get("type") == "property_accessor":
            inner = accessor["operator"]["operands"]
            return self._access(self._access(base, inner["operand_1"]), inner["operand_2"])
        if not isinstance(accessor, str):
            raise Unsupported(f"{self.template.relative}: property access with {accessor!r}")
        if isinstance(base, Ref):
            return Ref(f"{base.path}.{accessor}")
        if not isinstance(base, dict) or accessor not in base:
            raise Unsupported(f"{self.template.relative}: no property {accessor!r} in {base!r}")
        return base[accessor]

    # -- modules -----------------------------------------------------------------------------------
    def instances(self, module: str) -> list[dict[str, Any]]:
        """The module's deployed instances (none when its condition is false; one per loop item),
        each its config with ``name``, ``scope`` and ``params`` evaluated."""
        config, condition, loop = body(self.template.modules[module])
        if condition is not None and not self._bool(condition, f"module {module}"):
            return []
        keep = {k: v for k, v in config.items() if k != "dependsOn"}
        if loop is None:
            return [self.value(keep)]
        return self.loop(loop, None, keep)


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise Unsupported(f"union of arrays of {value!r}")
    return value


