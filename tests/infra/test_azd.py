"""azd's wiring: azure.yaml names the app, the template and the hook; the parameter files fit
main.bicep; the postdeploy hook reads only outputs main.bicep has and passes eventgrid.bicep every
parameter it needs; infra/README.md documents every parameter, azd variable and app setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.bicep import INFRA, ROOT, parameters_file, template
from tests.infra.evaluate import Scope
from tests.infra.test_settings_contract import AZD_ENV, app_names

AZURE_YAML = ROOT / "azure.yaml"
PARAMETER_FILES = ["main.parameters.json", "import-only.parameters.json"]


def azure_yaml() -> dict:
    return yaml.safe_load(AZURE_YAML.read_text())


def hook_path() -> Path:
    return ROOT / azure_yaml()["hooks"]["postdeploy"]["posix"]["run"]


def test_azure_yaml_deploys_the_repository_root_as_a_python_function_app():
    doc = azure_yaml()
    assert doc["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    assert (ROOT / "function_app.py").is_file() and (ROOT / "host.json").is_file()
    assert (ROOT / "requirements.txt").is_file()
    infra = doc["infra"]
    assert infra["provider"] == "bicep" and (ROOT / infra["path"] / f"{infra['module']}.bicep") == INFRA / "main.bicep"
    assert (INFRA / f"{infra['module']}.parameters.json").is_file()


def test_the_app_carries_the_azd_service_tag():
    app = template("modules/functionapp.bicep")
    assert Scope(app).value(app.parameters["azdServiceName"]["default"]) == "api"
    assert "azdServiceName" not in template("main.bicep").modules["app"]["config"]["params"]
    assert set(azure_yaml()["services"]) == {"api"}


def test_the_postdeploy_hook_is_a_shell_script_that_parses():
    hook = hook_path()
    assert hook.is_file() and os.access(hook, os.X_OK)
    assert azure_yaml()["hooks"]["postdeploy"]["posix"]["shell"] == "sh"
    completed = subprocess.run(["sh", "-n", str(hook)], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    text = hook.read_text()
    assert "systemKeys.blobs_extension" in text and "infra/eventgrid.bicep" in text


def test_the_hook_reads_only_outputs_of_main_bicep():
    text = hook_path().read_text()
    [needed] = re.findall(r"for name in ([^;]*?); do", text, re.S)
    names = needed.replace("\\\n", " ").split()
    outputs = set(template("main.bicep").outputs)
    assert names and set(names) <= outputs, sorted(set(names) - outputs)
    local = {"key", "value", "name", "attempt", "params"}
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text)) - local
    assert used <= set(names), sorted(used - set(names))


def test_the_hook_gives_eventgrid_bicep_its_parameters():
    text = hook_path().read_text()
    [raw] = re.findall(r'cat >"\$params" <<JSON\n(.*?)\nJSON\n', text, re.S)
    given = json.loads(re.sub(r"\$\{\w+\}", "x", raw.replace("\\$", "$")))["parameters"]
    eventgrid = template("eventgrid.bicep")
    assert set(given) <= set(eventgrid.parameters), sorted(set(given) - set(eventgrid.parameters))
    assert eventgrid.required_parameters() <= set(given)
    assert "functionName" not in given  # its default is the trigger's indexed name (test_event_grid)


@pytest.mark.parametrize("relative", PARAMETER_FILES)
def test_parameter_files_fit_main_bicep(relative: str):
    main = template("main.bicep")
    values = parameters_file(relative, AZD_ENV)
    assert set(values) <= set(main.parameters), sorted(set(values) - set(main.parameters))
    assert main.required_parameters() <= set(values)
    for name, value in values.items():
        allowed = main.allowed(name)
        assert allowed is None or value in allowed, f"{relative}: {name}={value!r} not in {allowed}"


def test_main_parameters_take_the_azd_environment():
    raw = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert raw["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert raw["location"]["value"] == "${AZURE_LOCATION}"
    assert raw["operatorPrincipalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    # Without FERRY_* variables set, azd's defaults are the parameters' own defaults.
    main = template("main.bicep")
    for name, value in parameters_file("main.parameters.json", AZD_ENV).items():
        if main.has_default(name):
            assert value == Scope(main).value(main.parameters[name]["default"]), name


def test_the_guide_documents_every_parameter_variable_and_setting():
    guide = (INFRA / "README.md").read_text()
    main = template("main.bicep")
    variables = set(re.findall(r"\$\{(\w+)", (INFRA / "main.parameters.json").read_text()))
    missing = sorted(n for n in [*main.parameters, *variables, *app_names()] if f"`{n}`" not in guide)
    assert not missing, f"infra/README.md does not mention {missing}"
    assert "az bicep build" in guide and "azd provision --preview" in guide
