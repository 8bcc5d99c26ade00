"""The OCI referrers tag-schema fallback, written once.

A registry without the referrers API lists a subject's referrers in an index tagged
``<alg>-<hex>`` after the subject's digest (``sha256-<64 hex>``, cut to the 128 characters a tag
may have). Such tags name bookkeeping, not artifacts: tag listings and archive indexes skip them.

May be imported by anything above ``ferry/oci``.
"""

from __future__ import annotations

import re

_FALLBACK_TAG = re.compile(r"sha(?:256|512)-[0-9a-f]{1,121}")


def fallback_tag(digest: str) -> str:
    """The referrers fallback tag for ``digest``: ``sha256:<hex>`` → ``sha256-<hex>``."""
    algorithm, hex_digest = digest.split(":", 1)
    return f"{algorithm}-{hex_digest}"[:128]


def is_fallback_tag(tag: str) -> bool:
    """True for a referrers fallback tag, which names no artifact."""
    return _FALLBACK_TAG.fullmatch(tag) is not None
