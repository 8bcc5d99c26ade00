"""Each role the code needs is assigned to the app's identity, on the resource it needs it for, and
no other role is.

NEEDS is the one place the tests write the roles, with their built-in role definition ids (Azure's
"built-in roles" reference); infra/README.md explains each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.bicep import GUID, Template, body, collect_strings, template
from tests.infra.evaluate import Ref, Scope
from tests.infra.test_settings_contract import main_scope

STORAGE = "Microsoft.Storage/storageAccounts"
REGISTRY = "Microsoft.ContainerRegistry/registries"
APP_PRINCIPAL = "appPrincipalId"
IMPORT_IMAGE = "Microsoft.ContainerRegistry/registries/importImage/action"


@dataclass(frozen=True)
class Need:
    role: str
    guid: str
    module: str
    scope_type: str
    why: str


NEEDS = [
    Need("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "modules/app-storage-access.bicep",
         STORAGE, "AzureWebJobsStorage: task hub blobs and leases, host keys, deployment package; claims"),
    Need("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "modules/app-storage-access.bicep",
         STORAGE, "AzureWebJobsStorage: Durable control and work-item queues"),
    Need("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "modules/app-storage-access.bicep",
         STORAGE, "AzureWebJobsStorage: Durable history and instances; the pipelines and runs tables"),
    Need("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "modules/transfer-access.bicep",
         STORAGE, "ManagedIdentity pipelines: export writes archives, copy-blob copies, import reads and deletes"),
    Need("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "modules/transfer-access.bicep",
         STORAGE, "FERRY_IMPORT_STORAGE: the blob trigger's poison queue lives in the account it watches"),
    Need("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6", "modules/keyvault-access.bicep",
         "Microsoft.KeyVault/vaults", "SasToken pipelines: read the secret keyVaultUri names"),
    Need("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec", "modules/registry-access.bicep", REGISTRY,
         "imports and copies write manifests, blobs and tags (push includes pull)"),
    Need("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d", "modules/registry-access.bicep", REGISTRY,
         "exports and copies read from registries Ferry does not write"),
    Need("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", "modules/registry-access.bicep", REGISTRY,
         "importImage with source.resourceId: ferry/azure/arm.py GETs the registry for its login server"),
    Need("Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb", "modules/monitoring.bicep",
         "Microsoft.Insights/components", "telemetry to Application Insights with local auth disabled"),
]
#: Granted only when asked for: not a need of the code today.
OPTIONAL = {"d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender on the notifications topic"}


@dataclass(frozen=True)
class Assignment:
    module: str
    symbol: str
    role_ids: frozenset[str]
    custom_actions: tuple[str, ...] | None
    principal: Any
    principal_type: Any
    scope_type: str
    condition: Any


def _role_ids(t: Template, expr: Any, loop_names: dict[str, Any]) -> tuple[set[str], tuple[str, ...] | None]:
    """Every role definition id ``expr`` can be, through the module's variables, loop items and
    ternaries; or the actions of the custom role definition it names."""
    ids: set[str] = set()
    for text in collect_strings(expr):
        if GUID.match(text):
            ids.add(text)
        elif text in loop_names:
            ids |= _role_ids(t, loop_names[text], {})[0]
        elif text in t.variables:
            ids |= _role_ids(t, t.variables[text]["value"], loop_names)[0]
        elif text in t.resources and t.resources[text]["type"] == "Microsoft.Authorization/roleDefinitions":
            definition, _, _ = body(t.resources[text])
            [permission] = definition["properties"]["permissions"]
            return ids, tuple(permission["actions"])
    return ids, None


def assignments(relative: str) -> list[Assignment]:
    t = template(relative)
    found = []
    for symbol, resource in t.resources_of_type("Microsoft.Authorization/roleAssignments").items():
        config, condition, loop = body(resource)
        loop_names = {loop["detail"]["item_name"]: loop["detail"]["array_name"]} if loop else {}
        ids, actions = _role_ids(t, config["properties"]["roleDefinitionId"], loop_names)
        scope = t.resources[config["scope"]]["type"]
        found.append(Assignment(relative, symbol, frozenset(ids), actions, config["properties"]["principalId"],
                                config["properties"].get("principalType"), scope, condition))
    return found


def modules_assigning_roles() -> set[str]:
    main = template("main.bicep")
    return {main.module_path(m) for m in main.modules if assignments(main.module_path(m))}


@pytest.mark.parametrize("need", NEEDS, ids=lambda n: f"{n.role} in {n.module}")
def test_each_role_the_code_needs_is_assigned_to_the_app(need: Need):
    matching = [a for a in assignments(need.module) if need.guid in a.role_ids and a.principal == APP_PRINCIPAL]
    assert matching, f"{need.module} does not assign {need.role} to {APP_PRINCIPAL} ({need.why})"
    assert all(a.scope_type == need.scope_type for a in matching), [a.scope_type for a in matching]
    assert all(a.principal_type == "ServicePrincipal" for a in matching)


@pytest.mark.parametrize("relative", sorted({n.module for n in NEEDS}))
def test_main_passes_the_app_identity_to_each_role_module(relative: str):
    scope = main_scope("handoff and a second registry")
    main = scope.template
    calls = [m for m in main.modules if main.module_path(m) == relative]
    assert calls, f"main.bicep never deploys {relative}"
    for module in calls:
        for instance in scope.instances(module):
            assert instance["params"]["appPrincipalId"] == Ref("identity.outputs.principalId"), module


def test_the_import_account_gets_the_trigger_queue_role_and_the_main_registry_push():
    scope = main_scope("handoff and a second registry")
    [target] = scope.instances("targetAccess")
    assert target["params"]["importAccount"] is True
    [queue] = [a for a in assignments("modules/transfer-access.bicep") if "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
               in a.role_ids]
    assert queue.condition == "importAccount"
    registries = [i["params"] for i in scope.instances("registryAccess")]
    assert [(r["push"], r["importImage"]) for r in registries] == [(True, True), (False, False)]


def test_the_handoff_role_allows_import_image_and_nothing_else():
    [custom] = [a for a in assignments("modules/registry-access.bicep") if a.custom_actions is not None]
    assert custom.custom_actions == (IMPORT_IMAGE,)
    assert custom.principal == APP_PRINCIPAL and custom.scope_type == REGISTRY
    assert custom.condition == "importImage"
    assert main_scope("azd defaults").instances("registryAccess")[0]["params"]["importImage"] is False


def test_no_role_beyond_the_needs_is_given_to_the_app():
    needed = {n.guid for n in NEEDS} | set(OPTIONAL)
    for relative in modules_assigning_roles():
        for a in assignments(relative):
            if a.principal == APP_PRINCIPAL and a.custom_actions is None:
                assert a.role_ids <= needed, f"{relative}: {a.symbol} grants {sorted(a.role_ids - needed)}"


def test_event_grid_writes_dead_letters_to_its_container_only():
    [dead] = [a for a in assignments("modules/app-storage-access.bicep") if a.principal == "deadLetterPrincipalId"]
    assert dead.role_ids == {"ba92f5b4-2d11-453d-a403-e96b0029c9fe"}
    assert dead.scope_type == "Microsoft.Storage/storageAccounts/blobServices/containers"
    [call] = main_scope("azd defaults").instances("appStorageAccess")
    assert call["params"]["deadLetterPrincipalId"] == Ref("importEvents.outputs.principalId")
    events = template("modules/import-events.bicep")
    [topic] = events.resources_of_type("Microsoft.EventGrid/systemTopics").values()
    assert topic["config"]["identity"] == {"type": "SystemAssigned"}
    assert Scope(events).value(events.outputs["principalId"]["value"]).path.endswith("identity.principalId")
