"""Rego policies, evaluated in-process on the candidate document with ``regopy``.

``regopy`` (pinned 1.5.2 in requirements.txt) is Microsoft's Python binding of rego-cpp, a
native Rego interpreter: it evaluates OPA's language in the process, offline, with no OPA server
or Go binary to run beside the Functions host, and its wheels carry the library (MIT). It is
released with rego-cpp itself (1.5.2 was built in July 2026), so it follows the language.

A policy is a module in Rego v1 syntax whose ``deny`` rule is a set of strings, each a reason to
refuse the candidate (the document is ``input``)::

    package ferry.gate
    import rego.v1

    deny contains msg if {
        some config in input.configs
        upper(config.env.BACKGROUND_COLOR) == "RED"
        msg := sprintf("%s sets BACKGROUND_COLOR=%s", [config.platform, config.env.BACKGROUND_COLOR])
    }

Three quirks of regopy 1.5.2, the first two worked around here (and pinned by a test whose
reasons carry quotes, backslashes and non-ASCII text), the third documented for policy authors:

* a Python ``input`` containing a backslash is mis-encoded, so the document goes in as JSON text
  (``set_input_term``);
* results are printed as JSON without escaping quotes or backslashes, which its own ``Output``
  then fails to parse, so the query returns each deny message URL-encoded (``urlquery.encode``)
  and reads the raw result string (the ``rego_shared`` calls, through the interpreter handle);
* ``count`` of a string with escaped characters (quotes, backslashes, control characters)
  counts the escapes too.

Evaluation errors of built-ins make a rule undefined, as OPA does by default; an error of the
whole query (a rule with conflicting values) is a failure, and the gate refuses on failure.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_plus

from regopy import Interpreter, LogLevel, RegoError
from regopy.rego_shared import rego_free_output, rego_output_ok, rego_output_string, rego_query

_PACKAGE_RE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$", re.MULTILINE)
_MODULE_NAME = "policy.rego"


class RegoFailure(ValueError):
    """A module that does not compile, or a query that failed; the message says where and why."""


def package_of(module: str) -> str:
    """The module's package (``ferry.gate``); RegoFailure if it names none a query can reach."""
    found = _PACKAGE_RE.search(module)
    if found is None:
        raise RegoFailure("the module has no 'package NAME' line with a dotted name (like 'package ferry.gate')")
    return found.group(1)


def _query(package: str) -> str:
    deny = f"data.{package}.deny"
    return (f"kind := type_name({deny}); "
            f"strings := [urlquery.encode(m) | some m in {deny}; is_string(m)]; "
            f"others := count([m | some m in {deny}; not is_string(m)])")


def _problem(text: str, module: str) -> str:
    """A readable message from rego-cpp's error tree: ``line 6: Invalid assignment operator``."""
    messages = []
    for found in re.finditer(r"\(error(?: \d+:[^|\n]*\|(\d+)\|\d+)?\s*\(errormsg (\d+):", text):
        start = found.end()
        message = text[start:start + int(found.group(2))]
        if found.group(1) is not None:
            message = f"line {module.count(chr(10), 0, int(found.group(1))) + 1}: {message}"
        messages.append(message)
    return "; ".join(dict.fromkeys(messages)) or "the Rego engine reported an error without detail"


def _raw_query(interpreter: Interpreter, query: str) -> tuple[bool, str]:
    """The raw result string of ``query`` (regopy's Output would parse it and fail, see above)."""
    handle = rego_query(interpreter._impl, query)
    try:
        return bool(rego_output_ok(handle)), rego_output_string(handle)
    finally:
        rego_free_output(handle)


def deny(module: str, document: dict[str, Any]) -> list[str]:
    """The ``deny`` set of ``module`` evaluated with ``document`` as input, as strings (sorted).

    RegoFailure when the module does not compile, defines no ``deny``, ``deny`` is not a set (or
    holds values other than strings), or evaluation fails.
    """
    package = package_of(module)
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE  # rego-cpp prints errors on stdout otherwise
    try:
        interpreter.set_input_term(json.dumps(document, ensure_ascii=False))
        interpreter.add_module(_MODULE_NAME, module)
        ok, text = _raw_query(interpreter, _query(package))
    except RegoError as exc:
        raise RegoFailure(_problem(str(exc), module)) from None
    if not ok or text.lstrip().startswith("("):
        raise RegoFailure(f"evaluation failed: {_problem(text, module)}")
    if text.strip() == "undefined":
        raise RegoFailure(f"package {package} defines no rule 'deny'")
    bindings = json.loads(text)["bindings"]
    if bindings["kind"] not in ("set", "array"):
        raise RegoFailure(f"data.{package}.deny is {bindings['kind']}, not a set of strings; "
                          "write it as 'deny contains msg if { ... }' (Rego v1)")
    if bindings["others"]:
        raise RegoFailure(f"data.{package}.deny holds {bindings['others']} value(s) that are not strings; "
                          "each reason must be a string")
    return sorted(unquote_plus(message) for message in bindings["strings"])


def check_module(module: str) -> None:
    """RegoFailure unless ``module`` compiles and defines a ``deny`` set (evaluated on an empty input)."""
    deny(module, {})
