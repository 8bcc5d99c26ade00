"""Settings from a plain dict: every accessor, its default and its error; and no setting read elsewhere."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from ferry import settings as module
from ferry.errors import UsageError
from ferry.settings import DEVELOPMENT_STORAGE, Settings, all_setting_names

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("ferry", "api", "activities", "orchestrations")
CONNECTION = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    empty = Settings({})
    assert empty == Settings() and empty.get("FERRY_REGISTRY") == ""
    assert (empty.claims_dir, empty.keyvault_ca_bundle, empty.registry, empty.arm_ca_bundle,
            empty.target_acr_resource_id) == (None, None, None, None, None)
    assert empty.storage_connection_strings == () and empty.insecure_registries == frozenset()
    assert empty.max_artifacts == 10_000 and empty.import_trigger_source == "LogsAndContainerScan"
    assert empty.arm_endpoint == "https://management.azure.com" and empty.acr_handoff is False
    assert empty.cache_dir == tmp_path / ".cache" / "ferry"
    assert empty.docker_config == tmp_path / ".docker" / "config.json"


def test_values_are_stripped_and_blank_is_unset() -> None:
    settings = Settings({"FERRY_CLAIMS_DIR": "  /claims ", "FERRY_KEYVAULT_CA_BUNDLE": "   ",
                         "FERRY_ARM_ENDPOINT": " https://arm.local:8443 ", "FERRY_ARM_CA_BUNDLE": "/ca.pem",
                         "FERRY_TARGET_ACR_RESOURCE_ID": "/subscriptions/s/acr"})
    assert settings.claims_dir == "/claims" and settings.keyvault_ca_bundle is None
    assert settings.arm_endpoint == "https://arm.local:8443" and settings.arm_ca_bundle == "/ca.pem"
    assert settings.target_acr_resource_id == "/subscriptions/s/acr"


@pytest.mark.parametrize(("accessor", "named"), [
    ("app_storage", "AzureWebJobsStorage"),
    ("claims_connection", "FERRY_CLAIMS_CONNECTION is not set (nor AzureWebJobsStorage)"),
    ("import_storage", "FERRY_IMPORT_STORAGE is not set (nor AzureWebJobsStorage)"),
])
def test_missing_connection_names_the_setting(accessor: str, named: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"app setting {named}")):
        getattr(Settings({"FERRY_CLAIMS_CONNECTION": " ", "FERRY_IMPORT_STORAGE": ""}), accessor)


def test_connections_fall_back_to_the_app_storage() -> None:
    settings = Settings({"AzureWebJobsStorage": CONNECTION})
    strings = [c.connection_string for c in (settings.app_storage, settings.claims_connection,
                                              settings.import_storage)]
    assert strings == [CONNECTION] * 3
    own = Settings({"AzureWebJobsStorage": CONNECTION, "FERRY_CLAIMS_CONNECTION": "AccountName=claims",
                    "FERRY_IMPORT_STORAGE": "AccountName=import"})
    assert (own.claims_connection.connection_string, own.import_storage.connection_string) == \
        ("AccountName=claims", "AccountName=import")


@pytest.mark.parametrize("value", ["UseDevelopmentStorage=true", "  UseDevelopmentStorage=true "])
def test_development_storage_is_expanded_everywhere(value: str) -> None:
    settings = Settings({"AzureWebJobsStorage": value, "AZURE_STORAGE_CONNECTION_STRING": value,
                         "FERRY_STORAGE_CONNECTION_STRINGS": json.dumps([value, CONNECTION])})
    assert {c.connection_string for c in (settings.app_storage, settings.claims_connection,
                                          settings.import_storage)} == {DEVELOPMENT_STORAGE}
    assert settings.storage_connection_strings == (DEVELOPMENT_STORAGE, CONNECTION, DEVELOPMENT_STORAGE)
    assert "AccountName=devstoreaccount1" in DEVELOPMENT_STORAGE and "127.0.0.1:10000" in DEVELOPMENT_STORAGE


def test_storage_connection_strings_in_order() -> None:
    assert Settings({"FERRY_STORAGE_CONNECTION_STRINGS": '["A=1", "B=2"]'}).storage_connection_strings == ("A=1", "B=2")
    assert Settings({"FERRY_STORAGE_CONNECTION_STRINGS": "[]", "AZURE_STORAGE_CONNECTION_STRING": "C=3"}
                    ).storage_connection_strings == ("C=3",)


@pytest.mark.parametrize("raw", ["A=1", '{"a": "A=1"}', "[1]", '"A=1"', '["A=1", null]', "[", "null"])
def test_bad_storage_connection_strings_name_the_setting(raw: str) -> None:
    with pytest.raises(UsageError, match="FERRY_STORAGE_CONNECTION_STRINGS must be a JSON list of strings"):
        _ = Settings({"FERRY_STORAGE_CONNECTION_STRINGS": raw}).storage_connection_strings


@pytest.mark.parametrize(("raw", "expected"), [("50", 50), (" 7 ", 7), ("1", 1), ("", 10_000)])
def test_max_artifacts(raw: str, expected: int) -> None:
    assert Settings({"FERRY_MAX_ARTIFACTS": raw}).max_artifacts == expected


@pytest.mark.parametrize("raw", ["0", "-3", "abc", "1.5", "1e3", "ten"])
def test_bad_max_artifacts_names_the_setting(raw: str) -> None:
    with pytest.raises(UsageError, match=f"FERRY_MAX_ARTIFACTS must be a positive whole number, not {raw!r}"):
        _ = Settings({"FERRY_MAX_ARTIFACTS": raw}).max_artifacts


@pytest.mark.parametrize(("raw", "expected"), [
    ("acr.example.io", "acr.example.io"), ("https://acr.example.io/", "acr.example.io"),
    ("http://localhost:5000", "localhost:5000"), (" registry:5000 ", "registry:5000"), ("  ", None)])
def test_registry(raw: str, expected: str | None) -> None:
    assert Settings({"FERRY_REGISTRY": raw}).registry == expected


def test_insecure_registries() -> None:
    settings = Settings({"FERRY_INSECURE_REGISTRIES": "a.local:5000, b.local ,, c"})
    assert settings.insecure_registries == frozenset({"a.local:5000", "b.local", "c"})


@pytest.mark.parametrize(("raw", "expected"), [
    ("EventGrid", "EventGrid"), ("Event Grid", "EventGrid"), ("eventgrid", "EventGrid"),
    ("LogsAndContainerScan", "LogsAndContainerScan"), ("Polling", "LogsAndContainerScan")])
def test_import_trigger_source(raw: str, expected: str) -> None:
    assert Settings({"FERRY_IMPORT_TRIGGER_SOURCE": raw}).import_trigger_source == expected


@pytest.mark.parametrize(("raw", "expected"), [("true", True), (" TRUE ", True), ("True", True),
                                               ("false", False), ("1", False), ("yes", False)])
def test_acr_handoff(raw: str, expected: bool) -> None:
    assert Settings({"FERRY_ACR_IMPORT_HANDOFF": raw}).acr_handoff is expected


def test_cli_paths(tmp_path: Path) -> None:
    assert Settings({"FERRY_CACHE_DIR": str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}).cache_dir == tmp_path / "c"
    assert Settings({"XDG_CACHE_HOME": str(tmp_path)}).cache_dir == tmp_path / "ferry"
    assert Settings({"DOCKER_CONFIG": str(tmp_path)}).docker_config == tmp_path / "config.json"


def test_from_env_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FERRY_REGISTRY": "one.example"}
    settings = Settings.from_env(env)
    env["FERRY_REGISTRY"] = "two.example"
    assert settings.registry == "one.example"
    monkeypatch.setenv("FERRY_REGISTRY", "three.example")
    from_process = Settings.from_env()
    monkeypatch.setenv("FERRY_REGISTRY", "four.example")
    assert from_process.registry == "three.example"


# --------------------------------------------------------------------------- the names, in one place


def test_all_setting_names_are_the_module_constants() -> None:
    names = all_setting_names()
    assert {"AzureWebJobsStorage", "FERRY_REGISTRY", "FERRY_MAX_ARTIFACTS", "DOCKER_CONFIG", "XDG_CACHE_HOME",
            "AZURE_STORAGE_CONNECTION_STRING", "FERRY_IMPORT_BLOB_PATH"} <= names
    assert names >= module.CLI_ONLY
    assert DEVELOPMENT_STORAGE not in names and module.DEFAULT_ARM_ENDPOINT not in names
    assert all(re.fullmatch(r"[A-Za-z_]+", name) for name in names)


def string_literals(path: Path) -> list[str]:
    """Every string constant in the file, f-string parts and docstrings included."""
    return [node.value for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def python_files() -> list[Path]:
    files = [p for folder in SCANNED for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 40  # the scan found the code
    return files


def test_every_ferry_name_in_the_code_is_a_setting() -> None:
    names = all_setting_names()
    found: dict[str, list[str]] = {}
    for path in python_files():
        for text in string_literals(path):
            for name in re.findall(r"FERRY_[A-Z0-9_]*[A-Z0-9]", text):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    unknown = {name: where for name, where in found.items() if name not in names}
    assert not unknown, f"read outside ferry/settings.py (add them there): {unknown}"
    assert {"FERRY_REGISTRY", "FERRY_MAX_ARTIFACTS"} <= set(found)


def test_nothing_else_reads_the_environment() -> None:
    readers = []
    for path in python_files():
        if path == ROOT / "ferry" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                    a.name in ("environ", "getenv") for a in node.names):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not readers, f"settings read outside ferry/settings.py: {readers}"


def test_local_settings_example_lists_every_app_setting() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    host_only = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
    assert set(values) - host_only == all_setting_names() - module.CLI_ONLY
