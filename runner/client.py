"""A durable client that starts and inspects orchestrations on a ``LocalOrchestrationRunner``.

``LocalDurableClient`` *is a* ``azure.durable_functions.DurableOrchestrationClient`` (built from a
binding string shaped like the one the Functions extension passes), so code typed against the
real client takes it, and the URL-building methods -- ``create_check_status_response``,
``create_http_management_payload``, ``get_client_response_links`` -- and
``wait_for_completion_or_create_check_status_response`` are the SDK's own. The calls that would
go to the host's HTTP API are answered by the runner instead:

- ``start_new`` runs the orchestration on a background thread (``wait=False``, the default: poll
  ``get_status`` and watch custom status while it runs) or to its end before returning
  (``wait=True``). Ids are ``uuid4().hex`` when not given. An unknown orchestrator name raises
  ``Exception("The function '<name>' doesn't exist...")`` as the host's 400 does; an id whose
  instance is still Pending/Running raises ``InstanceAlreadyExists`` (an ``Exception``) -- the
  host's default ``OverridableExistingInstanceStates.NonRunningStates`` refuses it too, whereas a
  Completed/Failed/Terminated id is replaced.
- ``get_status`` returns the SDK's ``DurableOrchestrationStatus``; for an unknown id it is the
  SDK's empty (falsy) status, as the host's 404 gives. A Failed instance's ``output`` is
  ``"Orchestrator function '<name>' failed: <message>"``, like the host's.
- ``terminate`` stops the instance after its current turn (running activities finish in the
  background, their results are dropped); an unknown id raises like the SDK's 404 path.
- ``raise_event`` delivers the event through ``LocalOrchestrationRunner.raise_event`` (buffered
  until the orchestrator waits for it). Its errors are the SDK client's: ``ValueError`` for an
  empty name, ``Exception("No instance with ID <id> found.")`` (the host's 404) and
  ``Exception("Instance with ID <id> is gone: either completed or failed")`` (410); the data must
  be JSON-serializable (``json.dumps``, as the SDK sends it).
- Entities, rewind, suspend/resume/restart raise ``UnsupportedDurableFeature``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.PurgeHistoryResult import PurgeHistoryResult

from runner.functions import resolve_client_function
from runner.history import format_timestamp
from runner.records import InstanceNotRunning, InstanceRecord, UnsupportedDurableFeature
from runner.replay import LocalOrchestrationRunner

_INSTANCE_PLACEHOLDER = "INSTANCEID"


def binding_context(task_hub: str, base_url: str, connection: str = "Storage", code: str = "local") -> str:
    """A durableClient binding string in the shape the Functions extension passes to the worker."""
    hooks = f"{base_url.rstrip('/')}/runtime/webhooks/durabletask"
    query = f"taskHub={task_hub}&connection={connection}&code={code}"
    instance = f"{hooks}/instances/{_INSTANCE_PLACEHOLDER}"
    return json.dumps({
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{hooks}/orchestrators/{{functionName}}[/{{instanceId}}]?code={code}",
            "createAndWaitOnNewInstancePostUri": (
                f"{hooks}/orchestrators/{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}"
                f"&pollingInterval={{intervalInSeconds}}&code={code}"
            ),
        },
        "managementUrls": {
            "id": _INSTANCE_PLACEHOLDER,
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        },
        "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/",
        "requiredQueryStringParameters": query,
    })


async def _no_http(*args: Any, **kwargs: Any) -> Any:
    raise UnsupportedDurableFeature("LocalDurableClient does not reach the host's HTTP API for this operation")


class LocalDurableClient(DurableOrchestrationClient):
    """Stand-in for ``DurableOrchestrationClient`` backed by a ``LocalOrchestrationRunner``."""

    def __init__(
        self,
        runner: LocalOrchestrationRunner,
        *,
        wait: bool = False,
        task_hub: str = "TestHubName",
        base_url: str = "http://localhost:7071",
    ) -> None:
        super().__init__(binding_context(task_hub, base_url))
        self.runner = runner
        self.wait = wait
        # Anything not overridden below must not try to reach a host.
        self._post_async_request = _no_http
        self._get_async_request = _no_http
        self._delete_async_request = _no_http

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
        version: str | None = None,
    ) -> str:
        if orchestration_function_name not in self.runner.registry.orchestrators:
            raise Exception(
                f"The function '{orchestration_function_name}' doesn't exist, is disabled, or is not an orchestrator "
                "function. Additional info: the local runner knows "
                f"{sorted(self.runner.registry.orchestrators)}"
            )
        input_json = self._get_json_input(client_input)
        if not self.wait:
            return self.runner.start(orchestration_function_name, instance_id=instance_id, input_json=input_json)
        instance_id = instance_id or uuid.uuid4().hex
        self.runner.start(orchestration_function_name, instance_id=instance_id, input_json=input_json)
        self.runner.wait(instance_id)
        return instance_id

    async def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = False,
    ) -> DurableOrchestrationStatus:
        record = self.runner.get(instance_id)
        if record is None:
            return DurableOrchestrationStatus.from_json("")  # what the SDK builds from the host's empty 404
        return _status(record, show_history, show_history_output, show_input)

    async def get_status_all(self) -> list[DurableOrchestrationStatus]:
        return [_status(record) for record in self.runner.instances()]

    async def get_status_by(
        self,
        created_time_from: datetime | None = None,
        created_time_to: datetime | None = None,
        runtime_status: list[OrchestrationRuntimeStatus] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[DurableOrchestrationStatus]:
        wanted = {s.value for s in runtime_status} if runtime_status else None
        found = []
        for record in self.runner.instances():
            if created_time_from is not None and record.created_time < created_time_from:
                continue
            if created_time_to is not None and record.created_time > created_time_to:
                continue
            if wanted is not None and record.runtime_status not in wanted:
                continue
            if instance_id_prefix and not record.instance_id.startswith(instance_id_prefix):
                continue
            found.append(_status(record))
        return found

    async def terminate(self, instance_id: str, reason: str) -> None:
        try:
            self.runner.terminate(instance_id, reason)
        except KeyError:
            raise Exception(f"No instance with ID '{instance_id}' found.") from None

    async def purge_instance_history(self, instance_id: str) -> PurgeHistoryResult:
        return PurgeHistoryResult(instancesDeleted=1 if self.runner.purge(instance_id) else 0)

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None,
                          task_hub_name: str | None = None, connection_name: str | None = None) -> None:
        if event_name == "":
            raise ValueError("event_name must be a non-empty string.")
        try:
            self.runner.raise_event(instance_id, event_name, data_json=json.dumps(event_data))
        except KeyError:
            raise Exception(f"No instance with ID {instance_id} found.") from None
        except InstanceNotRunning:
            raise Exception(f"Instance with ID {instance_id} is gone: either completed or failed") from None


def _status(
    record: InstanceRecord, show_history: bool = False, show_history_output: bool = False, show_input: bool = False
) -> DurableOrchestrationStatus:
    history = None
    if show_history:
        hidden = set() if show_history_output else {"Result", "Input"}
        history = [{k: v for k, v in event.items() if k not in hidden} for event in list(record.history)]
    return DurableOrchestrationStatus(
        name=record.name,
        instanceId=record.instance_id,
        createdTime=format_timestamp(record.created_time),
        lastUpdatedTime=format_timestamp(record.last_updated_time),
        input=record.input if show_input else None,
        output=record.output,
        runtimeStatus=record.runtime_status,
        customStatus=record.custom_status,
        history=history,
    )


async def acall_client_function(fn: Any, *, client: Any, client_name: str = "client", **bindings: Any) -> Any:
    """Await a ``@durable_client_input`` function with ``client`` as its client argument.

    ``fn`` is the decorated FunctionBuilder/Function, the SDK's middleware or the raw ``async def``
    (then ``client_name`` names the parameter). ``bindings`` are the other arguments by binding
    name, e.g. ``req=func.HttpRequest(...)`` or ``blob=func.blob.InputStream(...)``.
    """
    raw, parameter = resolve_client_function(fn, client_name)
    return await raw(**{parameter: client}, **bindings)


def call_client_function(fn: Any, *, client: Any, client_name: str = "client", **bindings: Any) -> Any:
    """Synchronous ``acall_client_function`` (``asyncio.run``; not from inside a running loop)."""
    return asyncio.run(acall_client_function(fn, client=client, client_name=client_name, **bindings))
