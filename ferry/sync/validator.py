"""An external validator: Ferry POSTs the candidate and the validator answers with a verdict, now
or later.

The request is JSON: ``{"digest", "source", "target", "document", "policy"}`` (the candidate
document of :mod:`ferry.sync.document`), plus ``{"run", "callback"}`` when the run can take a
verdict later. The answer is ``{"verdict": "approve" | "reject", "reason": "..."}``, or
``{"verdict": "pending"}``: the verdict comes later, ``POST``-ed to the ``callback`` path
(``/api/syncs/{name}/runs/{run}/verdict``, see ``api/syncs.py``) within the policy's timeout.
Anything else (an error status, no verdict, no answer within the timeout) is a rejection that says
why. Answers are read with a cap; the validator's text is shown only as its ``reason``, cut short.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ferry.redact import redact
from ferry.registry.bodies import read_prefix, safe_text

MAX_ANSWER = 64 * 1024
#: The longest a synchronous answer is waited for, whatever the policy's timeout.
MAX_WAIT = 60
MAX_REASON = 200

Verdict = Literal["approve", "reject", "pending"]


@dataclass(frozen=True)
class Answer:
    """A validator's verdict on one digest, and its reason (printable, redacted, cut short)."""

    verdict: Verdict
    reason: str = ""

    @classmethod
    def given(cls, verdict: str, reason: object) -> Answer:
        """A verdict that came back on the callback; anything but approve is a rejection."""
        words = shown_reason(reason)
        if verdict == "approve":
            return cls("approve", words)
        return cls("reject", f"the validator rejected it: {words or 'no reason given'}")


@dataclass(frozen=True)
class Callback:
    """Where a validator that answers ``pending`` gives its verdict later, and the verdicts given so far.

    ``given`` maps ``(policy id, digest)`` to the answer that came back; a validator with an answer
    there is not asked again. With ``can_wait`` false a ``pending`` answer is a rejection: the run
    has already waited once."""

    sync: str
    run: str
    given: Mapping[tuple[str, str], Answer] = field(default_factory=dict)
    can_wait: bool = True

    @property
    def path(self) -> str:
        return f"/api/syncs/{self.sync}/runs/{self.run}/verdict"


def shown_reason(reason: object) -> str:
    return safe_text(redact(str(reason or "")), MAX_REASON)


def judge(policy_id: str, url: str, timeout: float, document: dict[str, Any], callback: Callback | None) -> Answer:
    """The verdict of the validator at ``url`` on ``document``: one given on the callback, else its answer.
    ``pending`` only when ``callback`` can still wait; otherwise that is a rejection saying why."""
    digest = str(document.get("digest"))
    if callback is not None and (policy_id, digest) in callback.given:
        return callback.given[(policy_id, digest)]
    answer = ask(url, document, timeout, policy_id=policy_id, callback=callback)
    if answer.verdict == "pending" and (callback is None or not callback.can_wait):
        why = ("this run takes no later verdicts (only the Functions app's sync orchestration does)"
               if callback is None else "it had answered pending already, and the verdict it gave was expected")
        return Answer("reject", f"the validator {redact(url)} answered pending, but {why}")
    return answer


def ask(url: str, document: dict[str, Any], timeout: float, *, policy_id: str = "external",
        callback: Callback | None = None) -> Answer:
    """The validator's answer. A reason shows the URL redacted and the validator's own words only
    as printable text, cut short."""
    payload = {"digest": document.get("digest"), "source": document.get("source"),
               "target": document.get("target"), "document": document, "policy": policy_id}
    if callback is not None:
        payload |= {"run": callback.run, "callback": callback.path}
    shown, wait = redact(url), min(timeout, MAX_WAIT)
    try:
        with httpx.Client(timeout=wait, follow_redirects=False) as client, \
                client.stream("POST", url, json=payload) as response:
            body, cut = read_prefix(response, MAX_ANSWER)
    except httpx.TimeoutException:
        return Answer("reject", f"the validator {shown} gave no verdict within {wait:.0f} s")
    except httpx.HTTPError as exc:
        return Answer("reject", f"the validator {shown} could not be reached ({type(exc).__name__})")
    if response.status_code not in (200, 202):
        return Answer("reject", f"the validator {shown} answered {response.status_code} without a verdict")
    if cut:
        return Answer("reject", f"the validator {shown} answered with more than {MAX_ANSWER // 1024} KiB")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    verdict = answer.get("verdict") if isinstance(answer, dict) else None
    if verdict in ("approve", "reject"):
        return Answer.given(verdict, answer.get("reason") if isinstance(answer, dict) else None)
    if verdict == "pending":
        return Answer("pending", f"awaiting the verdict of {shown} on the callback")
    return Answer("reject", f"the validator {shown} gave no verdict (expected {{\"verdict\": \"approve\" | "
                            "\"reject\" | \"pending\"}})")
