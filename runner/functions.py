"""Find orchestrator, activity and client functions in a v2 app or blueprint.

``FunctionRegister.get_functions()`` (DFApp, FunctionApp) records every name it returns for its
duplicate-name check, so a second call on the same app raises "does not have a unique function
name" -- and a Blueprint has no ``get_functions`` at all. The lookups here therefore read
``container._function_builders`` (the list every ``DecoratorApi`` keeps, which
``register_functions`` extends with a blueprint's builders) and take each builder's ``_function``
*without* calling ``build()``: nothing on the app is recorded or mutated, so the worker (or a
test) can still call ``get_functions()`` once afterwards. These are private attributes of
azure-functions 1.26.0; ``requirements.txt`` pins it exactly.

What each decorator leaves behind (azure-functions-durable 1.7.0):

- ``@bp.orchestration_trigger``: ``Function.get_user_function()`` is the SDK's ``handle`` wrapper;
  the raw generator function is its ``.orchestrator_function`` and the decorator's ``input_type``
  is ``._df_input_type``.
- ``@bp.activity_trigger(input_name=...)``: the user function itself; the worker calls it with the
  input as the keyword named by the trigger binding (``trigger.name``).
- ``@bp.durable_client_input(client_name=...)``: the user function is replaced by an ``async``
  middleware that builds a ``DurableOrchestrationClient`` from the binding string; the raw
  ``async def`` is ``middleware.client_function`` and the parameter name is the ``durableClient``
  binding's ``name``.
- Names are ``Function.get_function_name()``: ``@bp.function_name`` if given, else ``__name__``.
  (The SDK's ``call_activity(<FunctionBuilder>)`` uses ``_function._name`` -- the ``__name__`` --
  and ignores ``@function_name``, so pass names as strings when they differ.)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
DURABLE_CLIENT = "durableClient"

OrchestratorFunction = Callable[[Any], Any]


def iter_functions(container: Any) -> Iterator[Any]:
    """The ``azure.functions.decorators.function_app.Function`` objects of an app or blueprint."""
    builders = getattr(container, "_function_builders", None)
    if builders is None:
        raise TypeError(f"{container!r} is not a FunctionApp, DFApp or Blueprint (no _function_builders)")
    for builder in builders:
        yield builder._function


def _as_function(obj: Any) -> Any | None:
    """The Function behind a FunctionBuilder or Function, else None."""
    fn = getattr(obj, "_function", None)  # FunctionBuilder
    if fn is not None and hasattr(fn, "get_trigger"):
        return fn
    if hasattr(obj, "get_trigger") and hasattr(obj, "get_user_function"):
        return obj
    return None


def _trigger_type(function: Any) -> str | None:
    trigger = function.get_trigger()
    if trigger is None:
        return None
    return str(trigger.get_binding_name())


def resolve_orchestrator(obj: Any) -> tuple[str, OrchestratorFunction, type | None]:
    """(name, raw generator function, declared input type) for any orchestrator handle.

    Accepts a FunctionBuilder or Function from ``@orchestration_trigger``, the SDK's ``handle``
    wrapper (anything with ``.orchestrator_function``), or a plain generator function.
    """
    function = _as_function(obj)
    if function is not None:
        if _trigger_type(function) != ORCHESTRATION_TRIGGER:
            kind = _trigger_type(function)
            raise TypeError(f"{function.get_function_name()!r} is not an orchestrator (trigger {kind})")
        handle = function.get_user_function()
        return function.get_function_name(), handle.orchestrator_function, getattr(handle, "_df_input_type", None)
    raw = getattr(obj, "orchestrator_function", None)
    if raw is not None:
        return getattr(obj, "__name__", raw.__name__), raw, getattr(obj, "_df_input_type", None)
    if callable(obj):
        return getattr(obj, "__name__", "orchestrator"), obj, None
    raise TypeError(f"cannot use {obj!r} as an orchestrator function")


@dataclass(frozen=True)
class ActivityFunction:
    """An activity as the worker calls it: the input goes in as keyword ``input_name``."""

    name: str
    fn: Callable[..., Any]
    input_name: str | None = None  # None: call positionally (plain callables)

    def __call__(self, value: Any) -> Any:
        result = self.fn(**{self.input_name: value}) if self.input_name else self.fn(value)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def resolve_activity(obj: Any, name: str | None = None) -> ActivityFunction:
    """An ActivityFunction from an ``@activity_trigger`` builder/Function or a plain callable."""
    function = _as_function(obj)
    if function is not None:
        if _trigger_type(function) != ACTIVITY_TRIGGER:
            raise TypeError(f"{function.get_function_name()!r} is not an activity (trigger {_trigger_type(function)})")
        return ActivityFunction(
            name or str(function.get_function_name()), function.get_user_function(), function.get_trigger().name
        )
    if isinstance(obj, ActivityFunction):
        return obj if name is None or name == obj.name else ActivityFunction(name, obj.fn, obj.input_name)
    if callable(obj):
        return ActivityFunction(name or str(getattr(obj, "__name__", "activity")), obj)
    raise TypeError(f"cannot use {obj!r} as an activity function")


def resolve_client_function(obj: Any, client_name: str = "client") -> tuple[Callable[..., Any], str]:
    """(raw ``async def``, name of its client parameter) for a ``@durable_client_input`` function.

    Accepts the FunctionBuilder / Function, the SDK middleware (``.client_function``), or the raw
    coroutine function (then ``client_name`` names the parameter).
    """
    function = _as_function(obj)
    if function is not None:
        bindings = [b for b in function.get_bindings() if b.get_binding_name() == DURABLE_CLIENT]
        if not bindings:
            raise TypeError(f"{function.get_function_name()!r} has no durableClient binding")
        middleware = function.get_user_function()
        raw = getattr(middleware, "client_function", middleware)
        return raw, bindings[0].name
    raw = getattr(obj, "client_function", obj)
    if not callable(raw):
        raise TypeError(f"cannot use {obj!r} as a client function")
    return raw, client_name


@dataclass
class FunctionRegistry:
    """Orchestrators and activities by function name (what the host's task hub dispatches on)."""

    orchestrators: dict[str, tuple[OrchestratorFunction, type | None]] = field(default_factory=dict)
    activities: dict[str, ActivityFunction] = field(default_factory=dict)
    clients: dict[str, Any] = field(default_factory=dict)  # name -> Function with a durableClient binding

    def add_container(self, container: Any) -> None:
        for function in iter_functions(container):
            kind = _trigger_type(function)
            name = function.get_function_name()
            if kind == ORCHESTRATION_TRIGGER:
                _, raw, input_type = resolve_orchestrator(function)
                self.orchestrators[name] = (raw, input_type)
            elif kind == ACTIVITY_TRIGGER:
                self.activities[name] = resolve_activity(function)
            elif any(b.get_binding_name() == DURABLE_CLIENT for b in function.get_bindings()):
                self.clients[name] = function

    def add_orchestrators(self, orchestrators: dict[str, Any] | Iterable[Any]) -> None:
        items = orchestrators.items() if isinstance(orchestrators, dict) else ((None, o) for o in orchestrators)
        for key, obj in items:
            name, raw, input_type = resolve_orchestrator(obj)
            self.orchestrators[key or name] = (raw, input_type)

    def orchestrator(self, ref: Any) -> tuple[str, OrchestratorFunction, type | None]:
        """(name, raw generator function, input type) of a registered name or of any orchestrator handle.

        An unknown name raises ``KeyError`` with the host's message; a handle not registered yet is
        registered under its name.
        """
        if isinstance(ref, str):
            found = self.orchestrators.get(ref)
            if found is None:
                raise KeyError(
                    f"The function '{ref}' doesn't exist, is disabled, or is not an orchestrator function."
                    f" Known orchestrators: {sorted(self.orchestrators)}"
                )
            return ref, found[0], found[1]
        name, fn, input_type = resolve_orchestrator(ref)
        self.orchestrators.setdefault(name, (fn, input_type))
        return name, fn, input_type

    def add_activities(self, activities: dict[str, Any] | Iterable[Any]) -> None:
        items = activities.items() if isinstance(activities, dict) else ((None, a) for a in activities)
        for key, obj in items:
            activity = resolve_activity(obj, key)
            self.activities[activity.name] = activity
