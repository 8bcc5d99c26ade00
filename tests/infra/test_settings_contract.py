"""The settings contract: the app settings the template gives the Function App are the ones the code
reads, in forms the code accepts, pointing at the resources the template deploys.

The names come from the code (``ferry.settings.all_setting_names() - CLI_ONLY``), never from a list
kept here, so a setting added to the code and not to the template fails this file. Each check runs
for three deployments: azd's defaults (main.parameters.json), the import-only example, and one with
the importImage handoff and a second registry.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

from ferry.egress import EgressPolicy
from ferry.settings import APP_STORAGE, CLAIMS_CONNECTION, CLI_ONLY, IMPORT_STORAGE, Settings, all_setting_names
from tests.helpers import app_functions
from tests.infra.bicep import ROOT, parameters_file, template
from tests.infra.evaluate import AZURE_CLOUD, Ref, Scope

#: Settings that name a storage account: set as the identity family X__*, never as X itself.
CONNECTIONS = (APP_STORAGE, CLAIMS_CONNECTION, IMPORT_STORAGE)
#: Read by the Functions host, not by Ferry's code.
HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
#: Refused on Flex Consumption (the runtime and its version are in functionAppConfig instead).
FLEX_REFUSED = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
                "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
                "WEBSITE_NODE_DEFAULT_VERSION", "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD"}
APP_IDENTITY_CLIENT_ID = Ref("identity.outputs.clientId")

AZD_ENV = {"AZURE_ENV_NAME": "ferry-test", "AZURE_LOCATION": "westeurope", "AZURE_PRINCIPAL_ID": "",
           "FERRY_REGISTRY_NAME": "contosoregistry"}
DEPLOYMENTS = {
    "azd defaults": lambda: parameters_file("main.parameters.json", AZD_ENV),
    "import only": lambda: parameters_file("import-only.parameters.json"),
    "handoff and a second registry": lambda: {
        **parameters_file("main.parameters.json", {**AZD_ENV, "FERRY_ACR_IMPORT_HANDOFF": "true"}),
        "additionalRegistries": [{"name": "UpstreamMirror", "resourceGroupName": "rg-mirror", "push": False}],
        "additionalAllowedHosts": "registry-1.docker.io,auth.docker.io",
        "registryDataEndpointRegions": "westeurope, northeurope",
    },
}


def app_names() -> set[str]:
    names = all_setting_names() - CLI_ONLY
    assert "FERRY_REGISTRY" in names and set(CONNECTIONS) <= names, "the settings module changed its names"
    return names


def main_scope(deployment: str) -> Scope:
    return Scope(template("main.bicep"), DEPLOYMENTS[deployment]())


def the(scope: Scope, module: str) -> dict[str, Any]:
    [instance] = scope.instances(module)
    return instance["params"]


def app_settings(scope: Scope) -> dict[str, Any]:
    """The settings as the Function App module receives them."""
    return the(scope, "app")["appSettings"]


def blob_host(account: str) -> str:
    return f"{account}.blob.{AZURE_CLOUD['suffixes']['storage']}"


@pytest.fixture(params=sorted(DEPLOYMENTS))
def scope(request: pytest.FixtureRequest) -> Scope:
    return main_scope(request.param)


def test_the_settings_the_code_reads_are_all_set(scope: Scope):
    keys = set(app_settings(scope))
    missing = sorted(name for name in app_names() if name not in keys
                     and not (name in CONNECTIONS and any(k.startswith(f"{name}__") for k in keys)))
    assert not missing, f"app settings the code reads but the template does not set: {missing}"


def test_the_template_sets_nothing_the_code_does_not_read(scope: Scope):
    unknown = sorted(key for key in app_settings(scope) if key not in app_names() and key not in HOST_SETTINGS
                     and key.split("__")[0] not in CONNECTIONS)
    assert not unknown, f"settings no code reads (a typo?): {unknown}"
    assert not FLEX_REFUSED & set(app_settings(scope))


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_storage_connections_use_the_identity_form(scope: Scope, connection: str):
    settings = app_settings(scope)
    family = {k.split("__", 1)[1]: v for k, v in settings.items() if k.startswith(f"{connection}__")}
    assert connection not in settings, f"{connection} would be a connection string; use {connection}__*"
    assert family["credential"] == "managedidentity"
    assert family["clientId"] == APP_IDENTITY_CLIENT_ID
    assert "blobServiceUri" in family or "accountName" in family
    assert not any("AccountKey=" in str(v) or "SharedAccessSignature=" in str(v) for v in settings.values())


def test_each_connection_names_the_account_it_is_for(scope: Scope):
    settings = app_settings(scope)
    app_account = the(scope, "appStorage")["name"]
    import_account = the(scope, "targetAccess")["accountName"]
    suffix = AZURE_CLOUD["suffixes"]["storage"]
    # Durable Functions needs blob, queue and table on its host storage...
    for service in ("blob", "queue", "table"):
        assert settings[f"{APP_STORAGE}__{service}ServiceUri"] == f"https://{app_account}.{service}.{suffix}"
    assert settings[f"{CLAIMS_CONNECTION}__blobServiceUri"] == f"https://{app_account}.blob.{suffix}"
    # ...and the blob trigger a queue (its poison queue) in the account it watches.
    for service in ("blob", "queue"):
        assert settings[f"{IMPORT_STORAGE}__{service}ServiceUri"] == f"https://{import_account}.{service}.{suffix}"


def test_the_app_runs_as_the_identity_the_settings_name():
    main, identity = template("main.bicep"), template("modules/identity.bicep")
    assert main.module_path("identity") == "modules/identity.bicep"
    assert the(main_scope("azd defaults"), "app")["identityId"] == Ref("identity.outputs.id")
    [(symbol, resource)] = identity.resources.items()
    assert resource["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    outputs = {name: Scope(identity).value(o["value"]) for name, o in identity.outputs.items()}
    assert outputs["clientId"] == Ref(f"{symbol}.properties.clientId")
    assert outputs["principalId"] == Ref(f"{symbol}.properties.principalId")
    assert outputs["id"] == Ref(f"{symbol}.id")


def test_the_values_are_read_by_the_code_as_meant(scope: Scope):
    settings = app_settings(scope)
    known = Settings({k: v for k, v in settings.items() if isinstance(v, str)})
    assert known.import_trigger_source == "EventGrid"
    assert known.claims_max_age_hours == 48 and known.max_artifacts == 10_000
    assert known.storage_connection_strings == () and known.insecure_registries == frozenset()
    assert known.arm_endpoint == "https://management.azure.com"
    assert known.registry == f"{scope.params['registryName'].lower()}{AZURE_CLOUD['suffixes']['acrLoginServer']}"
    assert known.keyvault_ca_bundle is None and known.arm_ca_bundle is None
    if scope.params.get("acrImportHandoff"):
        assert known.acr_handoff is True
        rid = known.target_acr_resource_id or ""
        assert re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                            r"Microsoft\.ContainerRegistry/registries/[^/]+", rid)
        assert rid.endswith(f"/registries/{scope.params['registryName']}")
    else:
        assert known.acr_handoff is False and known.target_acr_resource_id is None


def test_the_allow_list_is_exactly_this_deployments_endpoints(scope: Scope):
    expected = {blob_host(the(scope, "appStorage")["name"]), blob_host(the(scope, "targetAccess")["accountName"])}
    expected |= {blob_host(i["params"]["accountName"]) for i in scope.instances("sourceAccess")}
    expected.add(the(scope, "vaultAccess")["vaultName"] + AZURE_CLOUD["suffixes"]["keyvaultDns"])
    expected |= {i["params"]["registryName"].lower() + AZURE_CLOUD["suffixes"]["acrLoginServer"]
                 for i in scope.instances("registryAccess")}
    regions = [r.strip() for r in (scope.params.get("registryDataEndpointRegions") or "").split(",") if r.strip()]
    expected |= {f"{scope.params['registryName'].lower()}.{region}.data.azurecr.io" for region in regions}
    expected.add("management.azure.com")
    expected |= {h for h in (scope.params.get("additionalAllowedHosts") or "").split(",") if h}
    listed = app_settings(scope)["FERRY_ALLOWED_HOSTS"].split(",")
    assert len(listed) == len(set(listed))
    assert set(listed) == expected
    policy = EgressPolicy.from_settings(Settings({"FERRY_ALLOWED_HOSTS": ",".join(listed)}))
    assert all(policy.allows(host) for host in expected)
    assert not policy.allows("attacker.blob.core.windows.net") and not policy.allows("169.254.169.254")


def test_the_import_only_deployment_has_no_source_account():
    scope = main_scope("import only")
    assert scope.instances("sourceStorage") == [] and scope.instances("sourceAccess") == []
    assert scope.instances("targetStorage") == [] and scope.instances("vault") == []
    assert the(scope, "targetAccess")["accountName"] == scope.params["targetStorageAccountName"]


def test_the_trigger_and_the_timer_read_settings_that_are_set():
    """The host resolves %NAME% in bindings from app settings: each must be set."""
    settings = app_settings(main_scope("azd defaults"))
    bindings = {name: [json.loads(raw) for raw in fn.get_raw_bindings()] for name, fn in app_functions().items()}
    for name, binding in ((n, b) for n, bs in bindings.items() for b in bs):
        for value in (str(v) for v in binding.values()):
            for setting in re.findall(r"%(\w+)%", value):
                assert setting in settings, f"{name}: binding {binding['type']} reads %{setting}%"
        if "connection" in binding:
            assert any(k.startswith(f"{binding['connection']}__") or k == binding["connection"] for k in settings)
    timer = next(b for bs in bindings.values() for b in bs if b["type"] == "timerTrigger")
    assert timer["schedule"] == "%FERRY_CLAIMS_SWEEP_SCHEDULE%"
    assert len(settings["FERRY_CLAIMS_SWEEP_SCHEDULE"].split()) == 6  # NCRONTAB, seconds first


def test_the_import_blob_path_is_the_examples():
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    settings = app_settings(main_scope("azd defaults"))
    assert settings["FERRY_IMPORT_BLOB_PATH"] == example["FERRY_IMPORT_BLOB_PATH"] == "transfer/{name}"
    assert settings["FERRY_CLAIMS_SWEEP_SCHEDULE"] == example["FERRY_CLAIMS_SWEEP_SCHEDULE"]


def test_local_settings_example_lists_every_setting_the_code_reads():
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    missing = sorted(app_names() - set(example))
    assert not missing, f"local.settings.json.example lacks {missing}"


def test_the_runtime_is_in_function_app_config_not_in_app_settings():
    app = template("modules/functionapp.bicep")
    scope = Scope(app)
    [site] = app.resources_of_type("Microsoft.Web/sites").values()
    config = site["config"]
    assert config["kind"] == "functionapp,linux"
    runtime = scope.value(config["properties"]["functionAppConfig"]["runtime"])
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"]
    assert runtime == {"name": "python", "version": "3.11"} and target == "py311"
    assert config["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]["type"] == \
        "UserAssignedIdentity"
    assert config["identity"]["type"] == "UserAssigned"
    [plan] = app.resources_of_type("Microsoft.Web/serverfarms").values()
    assert plan["config"]["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    # The app settings reach the site whole, as one appsettings config resource.
    [settings] = app.resources_of_type("Microsoft.Web/sites/config").values()
    assert settings["config"]["name"] == "appsettings" and settings["config"]["properties"] == "appSettings"
    assert "appSettings" not in config["properties"].get("siteConfig", {})
    assert template("main.bicep").modules["app"]["config"]["params"]["appSettings"] == "appSettings"


def test_keys_are_off_everywhere_the_template_creates():
    [account] = template("modules/storage-account.bicep").resources_of_type(
        "Microsoft.Storage/storageAccounts").values()
    props = account["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False and props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    [vault] = template("modules/keyvault.bicep").resources_of_type("Microsoft.KeyVault/vaults").values()
    assert vault["config"]["properties"]["enableRbacAuthorization"] is True
    [insights] = template("modules/monitoring.bicep").resources_of_type("Microsoft.Insights/components").values()
    assert insights["config"]["properties"]["DisableLocalAuth"] is True
    [topic] = template("modules/notifications.bicep").resources_of_type("Microsoft.EventGrid/topics").values()
    assert topic["config"]["properties"]["disableLocalAuth"] is True
    settings = app_settings(main_scope("azd defaults"))
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == \
        Ref("ClientId=${identity.outputs.clientId};Authorization=AAD")
    # Every new account is that module's.
    main = template("main.bicep")
    accounts = {name for name in main.modules if main.module_path(name) == "modules/storage-account.bicep"}
    assert accounts == {"appStorage", "sourceStorage", "targetStorage"}
