"""The house's rules, read from the code: imports point down, settings are read in one place,
files and functions stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("ferry", "cli", "api", "orchestrations", "activities", "runner")
#: What the core must never import: the faces and the Functions runtime.
FACES = ("azure.functions", "azure.durable_functions", "function_app", "api", "cli", "orchestrations",
         "activities", "runner")


def python_files(*roots: str) -> list[Path]:
    return [p for root in roots for p in sorted((ROOT / root).rglob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_no_face():
    offenders = {f"{path.relative_to(ROOT)} imports {module}"
                 for path in python_files("ferry") for module in imported_modules(path)
                 if any(module == face or module.startswith(face + ".") for face in FACES)}
    assert python_files("ferry"), "the scan found no file"
    assert not offenders, sorted(offenders)


def test_the_scan_sees_an_import_of_a_face(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import api.runs\nfrom cli import main\n")
    assert imported_modules(sample) == {"api.runs", "cli"}


@pytest.mark.parametrize("lower", ["ferry/azure", "ferry/archive", "ferry/registry", "ferry/oci", "ferry/transports"])
def test_lower_floors_do_not_import_jobs_or_transfer(lower):
    offenders = {f"{path.relative_to(ROOT)} imports {module}"
                 for path in python_files(lower) for module in imported_modules(path)
                 if module.startswith(("ferry.jobs", "ferry.transfer", "ferry.copy", "ferry.plan"))}
    assert not offenders, sorted(offenders)


def reads_environment(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            return True
    return False


def test_only_the_settings_module_reads_the_environment():
    allowed = {ROOT / "ferry" / "settings.py", ROOT / "cli" / "run_command.py"}  # run sets FERRY_CLAIMS_DIR
    readers = {str(p.relative_to(ROOT)) for p in python_files("ferry", "api", "orchestrations", "activities", "cli")
               if reads_environment(p) and p not in allowed}
    assert reads_environment(ROOT / "ferry" / "settings.py"), "the scan itself is broken"
    assert not readers, sorted(readers)


@pytest.mark.parametrize("root", PRODUCT)
def test_product_files_and_functions_stay_small(root):
    too_long = []
    for path in python_files(root):
        text = path.read_text()
        if len(text.splitlines()) > 420:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > 65:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.name}: {length} lines")
    assert not too_long, too_long
