"""An external validator: Ferry POSTs the candidate and the validator answers with a verdict.

The request is JSON: ``{"digest", "source", "target", "document"}`` (the candidate document of
:mod:`ferry.sync.document`). The answer is ``{"verdict": "approve" | "reject", "reason": "..."}``.
Anything else (an error status, no verdict, no answer within the timeout) is a rejection that says
why. Answers are read with a cap; the validator's text is shown only as its ``reason``, cut short.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ferry.redact import redact
from ferry.registry.bodies import read_prefix, safe_text

MAX_ANSWER = 64 * 1024
#: The longest a synchronous verdict is waited for, whatever the policy's timeout.
MAX_WAIT = 60


def ask(url: str, document: dict[str, Any], timeout: float) -> str | None:
    """The validator's refusal reason, or None when it approves. The reason shows the URL redacted
    and the validator's own words only as printable text, cut short."""
    payload = {"digest": document.get("digest"), "source": document.get("source"),
               "target": document.get("target"), "document": document}
    shown, wait = redact(url), min(timeout, MAX_WAIT)
    try:
        with httpx.Client(timeout=wait, follow_redirects=False) as client, \
                client.stream("POST", url, json=payload) as response:
            body, cut = read_prefix(response, MAX_ANSWER)
    except httpx.TimeoutException:
        return f"the validator {shown} gave no verdict within {wait:.0f} s"
    except httpx.HTTPError as exc:
        return f"the validator {shown} could not be reached ({type(exc).__name__})"
    if response.status_code != 200:
        return f"the validator {shown} answered {response.status_code} without a verdict"
    if cut:
        return f"the validator {shown} answered with more than {MAX_ANSWER // 1024} KiB"
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    verdict = answer.get("verdict") if isinstance(answer, dict) else None
    reason = safe_text(redact(str(answer.get("reason") or "")), 200) if isinstance(answer, dict) else ""
    if verdict == "approve":
        return None
    if verdict == "reject":
        return f"the validator rejected it: {reason or 'no reason given'}"
    return f"the validator {shown} gave no verdict (expected {{\"verdict\": \"approve\" | \"reject\"}})"
