"""The Event Grid path of the import trigger: the system topic sits on the account FERRY_IMPORT_STORAGE
names, and the subscription (eventgrid.bicep, deployed by the postdeploy hook) delivers committed
blobs under the watched container to the trigger the host indexes, with a dead-letter container."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from api.import_trigger import trigger_source
from ferry.settings import IMPORT_BLOB_PATH, IMPORT_STORAGE, Settings
from tests.helpers import app_functions
from tests.infra.bicep import ROOT, body, template
from tests.infra.evaluate import Ref, Scope
from tests.infra.test_settings_contract import app_settings, main_scope, the

HOOK_PARAMS = {"systemTopicName": "evgt-ferry-import-x", "functionAppHostName": "func-ferry-x.azurewebsites.net",
               "blobsExtensionKey": "KEY", "deadLetterAccountId": "/subscriptions/s/resourceGroups/r/providers/"
               "Microsoft.Storage/storageAccounts/stferryx"}


def blob_trigger() -> tuple[str, dict]:
    """The one blob trigger the worker indexes: its function name and binding."""
    found = [(name, json.loads(raw)) for name, fn in app_functions().items() for raw in fn.get_raw_bindings()
             if json.loads(raw)["type"] == "blobTrigger"]
    assert len(found) == 1, found
    return found[0]


def subscription() -> tuple[Scope, dict]:
    t = template("eventgrid.bicep")
    [resource] = t.resources_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    return Scope(t, HOOK_PARAMS), body(resource)[0]


def test_the_trigger_reads_the_settings_the_template_sets():
    _, binding = blob_trigger()
    assert binding["path"] == f"%{IMPORT_BLOB_PATH}%" and binding["connection"] == IMPORT_STORAGE
    settings = app_settings(main_scope("azd defaults"))
    strings = Settings({k: v for k, v in settings.items() if isinstance(v, str)})
    assert trigger_source(strings) is func.BlobSource.EVENT_GRID


def test_the_subscription_calls_the_indexed_trigger_through_the_blob_extension():
    name, _ = blob_trigger()
    scope, config = subscription()
    assert scope.value(scope.template.parameters["functionName"]["default"]) == name == "import_trigger"
    destination = config["properties"]["destination"]
    assert destination["endpointType"] == "WebHook"
    url = urlsplit(scope.value(destination["properties"]["endpointUrl"]))
    assert (url.scheme, url.netloc, url.path) == ("https", HOOK_PARAMS["functionAppHostName"],
                                                  "/runtime/webhooks/blobs")
    assert parse_qs(url.query) == {"functionName": [f"Host.Functions.{name}"], "code": ["KEY"]}
    assert {"type": "secure"} in scope.template.parameters["blobsExtensionKey"]["decorators"]


def test_only_committed_blobs_under_the_watched_container_are_delivered():
    scope, config = subscription()
    delivered = scope.value(config["properties"]["filter"])
    assert delivered["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    [api] = delivered["advancedFilters"]
    assert (api["operatorType"], api["key"]) == ("StringIn", "data.api")
    assert sorted(api["values"]) == ["CopyBlob", "PutBlob", "PutBlockList"]
    # The container is the one FERRY_IMPORT_BLOB_PATH watches, in the template and in the example.
    main = main_scope("azd defaults")
    example = json.loads((ROOT / "local.settings.json.example").read_text())["Values"][IMPORT_BLOB_PATH]
    watched = app_settings(main)[IMPORT_BLOB_PATH].split("/")[0]
    handed = main.value(main.template.outputs["EVENTGRID_IMPORT_CONTAINER"]["value"])
    assert watched == example.split("/")[0] == handed
    assert scope.value(scope.template.parameters["containerName"]["default"]) == watched
    for container in (watched, "other"):
        subject = Scope(scope.template, {**HOOK_PARAMS, "containerName": container}).value(
            config["properties"]["filter"]["subjectBeginsWith"])
        assert subject == f"/blobServices/default/containers/{container}/blobs/"


def test_undeliverable_events_go_to_the_dead_letter_container():
    scope, config = subscription()
    dead = scope.value(config["properties"]["deadLetterWithResourceIdentity"])
    assert dead["identity"] == {"type": "SystemAssigned"}
    assert dead["deadLetterDestination"]["endpointType"] == "StorageBlob"
    main = main_scope("azd defaults")
    container = main.value(main.template.outputs["EVENTGRID_DEADLETTER_CONTAINER"]["value"])
    assert dead["deadLetterDestination"]["properties"]["blobContainerName"] == container
    assert container in the(main, "appStorage")["containers"]
    assert main.value(main.template.outputs["EVENTGRID_DEADLETTER_ACCOUNT_ID"]["value"]) == Ref("appStorage.outputs.id")


def test_the_system_topic_is_on_the_account_the_trigger_watches():
    for deployment in ("azd defaults", "import only"):
        main = main_scope(deployment)
        [events] = main.instances("importEvents")
        [target] = main.instances("targetAccess")
        assert events["params"]["accountName"] == target["params"]["accountName"]
        assert events["scope"] == target["scope"]
        assert main.value(main.template.outputs["EVENTGRID_RESOURCE_GROUP"]["value"]) == \
            events["scope"]["resourceGroup"]
    t = template("modules/import-events.bicep")
    [topic] = t.resources_of_type("Microsoft.EventGrid/systemTopics").values()
    assert topic["config"]["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    [(symbol, account)] = t.resources_of_type("Microsoft.Storage/storageAccounts").items()
    assert account["existing"] and account["config"]["name"] == "accountName"
    assert Scope(t).value(topic["config"]["properties"]["source"]) == Ref(f"{symbol}.id")
