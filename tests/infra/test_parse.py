"""Every .bicep file parses; a syntax error would fail the suite; the templates stay readable offline
and within what checkov's own (older) parser reads, so `make checkov` scans them rather than skipping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lark.exceptions import LarkError

from tests.infra.bicep import INFRA, bicep_files, parse_text, template

FILES = [p.relative_to(INFRA).as_posix() for p in bicep_files()]

# Syntax that parses with Bicep and pycep-parser 0.7 but not with the pycep-parser checkov 3.3 pins
# (0.5): checkov would count the file as a parsing error and scan nothing in it. Each was tried.
CHECKOV_UNREADABLE = {
    "deployer()": re.compile(r"\bdeployer\(\)"),
    "lambda (=>)": re.compile(r"=>"),
    "map()": re.compile(r"\bmap\("),
    "items()": re.compile(r"\bitems\("),
    "range()": re.compile(r"\brange\("),
    "user-defined type": re.compile(r"^\s*(@export\(\)\s*)?type\s+\w+\s*=", re.M),
    "user-defined function": re.compile(r"^\s*func\s+\w+", re.M),
    "import statement": re.compile(r"^\s*import\s", re.M),
    "arguments on the lines after '('": re.compile(r"\(\s*(//[^\n]*)?\n"),
}
# ...and syntax that is valid Bicep but that pycep-parser 0.7 itself cannot read.
PYCEP_UNREADABLE = {
    "a filtered loop ([for x in y: if (...) {...}])": re.compile(r"\[for [^\]]*:\s*if\s*\("),
}


def test_the_deployment_has_its_templates():
    assert {"main.bicep", "eventgrid.bicep"} <= set(FILES)
    assert len([f for f in FILES if f.startswith("modules/")]) >= 8


@pytest.mark.parametrize("relative", FILES)
def test_every_bicep_file_parses(relative: str):
    doc = template(relative).doc
    assert doc.get("resources") or doc.get("modules"), f"{relative} declares nothing"


VALID = """param name string
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  properties: {
    allowSharedKeyAccess: false
  }
}
"""


@pytest.mark.parametrize("broken", [
    VALID.replace("  }\n}\n", "  }\n"),                      # a brace missing
    VALID.replace("name: name", "name name"),                 # a colon missing
    VALID.replace("resource account", "resource"),            # no symbolic name
    VALID.replace("@2023-05-01' = {", "@2023-05-01' {"),      # no '='
    "var = 1\n",
])
def test_a_syntax_error_fails_to_parse(broken: str):
    assert parse_text(VALID)["resources"]["account"]["config"]["properties"] == {"allowSharedKeyAccess": False}
    with pytest.raises((LarkError, ValueError)):  # lark's parse errors, or pycep's pre-check
        parse_text(broken)


@pytest.mark.parametrize("relative", FILES)
def test_no_syntax_the_scanners_cannot_read(relative: str):
    text = re.sub(r"'(?:[^'\\\n]|\\.)*'", "''", (INFRA / relative).read_text())  # not inside strings
    code = "\n".join(line.split("//")[0] for line in text.splitlines())
    found = [name for name, pattern in {**CHECKOV_UNREADABLE, **PYCEP_UNREADABLE}.items() if pattern.search(code)]
    assert not found, f"{relative} uses {found}"


def test_the_scanner_guard_sees_what_it_forbids(tmp_path: Path):
    samples = {"deployer()": "param p string = deployer().objectId",
               "lambda (=>)": "var names = filter(xs, x => x.ok)",
               "arguments on the lines after '('": "var all = union(\n  a, b)",
               "a filtered loop ([for x in y: if (...) {...}])": "module m 'm.bicep' = [for x in xs: if (x.ok) {"}
    for name, line in samples.items():
        assert ({**CHECKOV_UNREADABLE, **PYCEP_UNREADABLE})[name].search(line), name


@pytest.mark.parametrize("relative", FILES)
def test_modules_are_local_files(relative: str):
    t = template(relative)
    for name, module in t.modules.items():
        assert module["type"] == "local", f"{relative}: module {name} is {module['detail']['full']!r}"
        assert (INFRA / t.module_path(name)).is_file(), f"{relative}: module {name}: no {t.module_path(name)}"
    source = (INFRA / relative).read_text()
    assert not re.search(r"'(br|ts)[:/]", source), f"{relative} references a module registry"


def test_every_module_file_is_used():
    used = {template(f).module_path(m) for f in FILES for m in template(f).modules}
    assert {f for f in FILES if f.startswith("modules/")} == used


@pytest.mark.parametrize("relative", FILES)
def test_every_parameter_and_variable_is_used(relative: str):
    """What Bicep's linter reports as no-unused-params / no-unused-vars, read from the source."""
    t = template(relative)
    code = "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in (INFRA / relative).read_text().splitlines()
                     if not line.lstrip().startswith("@description("))
    unused = [name for name in [*t.parameters, *t.variables] if len(re.findall(rf"\b{name}\b", code)) < 2]
    assert not unused, f"{relative} declares {unused} but never uses them"
