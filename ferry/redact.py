"""Keep secrets out of logs and error messages.

:func:`redact` masks SAS signatures, bearer/basic credentials, passwords and OAuth tokens in
free text and URLs. :class:`RedactingFilter` applies it to every log record it sees.
"""

from __future__ import annotations

import logging
import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # SAS query parameters: the signature is the secret; keep the rest readable.
    (re.compile(r"(?i)([?&](?:sig|signature|se?cret|password|access_token|refresh_token|code)=)[^&\s\"']+"),
     r"\1REDACTED"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 REDACTED"),
    # key=value (queries, connection strings, forms) and "key": "value" (JSON); an unquoted
    # ``key: text`` is prose such as "credentials.password: required", and stays readable.
    (re.compile(r"(?i)(\b(?:password|secret|access_token|refresh_token|identitytoken|token|accountkey)\s*=\s*\"?)"
                r"[^\"\s;,&]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(\"(?:password|secret|access_token|refresh_token|identitytoken|token|accountkey)\"\s*:\s*\"?)"
                r"[^\"\s;,&]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(AccountKey=)[^;\s]+"), r"\1REDACTED"),
    (re.compile(r"(https?://)[^/@\s:]+:[^/@\s]+@"), r"\1REDACTED@"),
    # JWTs anywhere (three base64url segments, the first starting with eyJ).
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "REDACTED-JWT"),
)


def redact(text: str) -> str:
    """``text`` with every recognizable secret replaced by ``REDACTED``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
