"""The kinds of gate policy: each a frozen dataclass that parses its JSON (naming the path of any
problem), writes it back, and checks a candidate document (:mod:`ferry.sync.document`), returning
the reasons it refuses, each one a sentence a person can act on.

The JSON shapes are listed in :mod:`ferry.sync.policies`, which is what the rest of Ferry imports.

May be imported by ``ferry/sync``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ferry.reference import is_valid_digest
from ferry.sync import rego
from ferry.sync.signatures import PublicKey, check_signatures, load_public_key
from ferry.sync.validator import Answer, Callback, judge
from ferry.transfer.fields import bad

_PLATFORM_RE = re.compile(r"[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?")


class Reader:
    """Reads one policy's JSON object, naming ``path.key`` in every error; :meth:`finish` refuses
    fields no reader asked for."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise bad(path, "must be a JSON object with a 'kind'")
        self.data, self.path, self.used = data, path, {"kind", "id"}

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def take(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.take(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise bad(self.at(key), "required: a non-empty string" if value is None else "must be a non-empty string")
        return value

    def texts(self, key: str, *, required: bool = False, valid: Callable[[str], object] | None = None,
              expected: str = "") -> tuple[str, ...]:
        """A list of non-empty strings; with ``valid``, each must pass it or is refused as not ``expected``."""
        value = self.take(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or (required and not value):
            problem = "required: a non-empty list of strings" if required else "must be a list of strings"
            raise bad(self.at(key), problem)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise bad(f"{self.at(key)}[{i}]", "must be a non-empty string")
            if valid is not None and not valid(item):
                raise bad(f"{self.at(key)}[{i}]", f"{item!r} is not {expected}")
        return tuple(value)

    def flag(self, key: str) -> bool | None:
        value = self.take(key)
        if value is not None and not isinstance(value, bool):
            raise bad(self.at(key), "must be true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.take(key)
        if value is None:
            return choices[0]
        if value not in choices:
            raise bad(self.at(key), f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise bad(self.path, f"unknown field(s) {', '.join(unknown)} for kind {self.data.get('kind')!r}")


@dataclass(frozen=True)
class Policy:
    """One rule. ``check`` returns the reasons it refuses the document (none: it passes)."""

    id: str
    kind: ClassVar[str] = ""
    #: Whether the document must carry its signatures (read from the source) for this policy.
    needs_signatures: ClassVar[bool] = False

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        raise NotImplementedError

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, document: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, **self.fields()}


def _configs(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in document["configs"] if not c["attestation"]]


def _where(item: dict[str, Any]) -> str:
    return item["platform"] or "the image"


@dataclass(frozen=True)
class EnvPolicy(Policy):
    kind: ClassVar[str] = "env"
    name: str = ""
    forbid: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    present: bool | None = None
    case_sensitive: bool = False

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        name = reader.text("name")
        assert name is not None
        policy = cls(policy_id or f"env-{name}", name, reader.texts("forbid"), reader.texts("require"),
                     reader.flag("present"), bool(reader.flag("caseSensitive")))
        if not (policy.forbid or policy.require or policy.present is not None):
            raise bad(reader.path, "an env policy needs 'forbid', 'require' or 'present'")
        return policy

    def fields(self) -> dict[str, Any]:
        return {"name": self.name, "forbid": list(self.forbid), "require": list(self.require),
                "present": self.present, "caseSensitive": self.case_sensitive}

    def _same(self, a: str, b: str) -> bool:
        return a == b if self.case_sensitive else a.casefold() == b.casefold()

    def check(self, document: dict[str, Any]) -> list[str]:
        configs = _configs(document)
        if not configs and (self.require or self.present):
            return [f"the artifact has no image config, so no Env with {self.name}"]
        return [reason for config in configs for reason in self._judge(config["env"].get(self.name),
                                                                          f"{_where(config)} config Env")]

    def _judge(self, value: str | None, where: str) -> list[str]:
        """Reasons to refuse one config whose Env sets the variable to ``value`` (None: not set)."""
        reasons = []
        hits = [v for v in self.forbid if value is not None and self._same(value, v)]
        if hits:
            reasons.append(f"{where} {self.name}={value} matches forbidden value {hits[0]}")
        if self.require and not (value is not None and any(self._same(value, v) for v in self.require)):
            found = f"{self.name}={value}" if value is not None else f"no {self.name}"
            reasons.append(f"{where} has {found}; it must be one of {', '.join(self.require)}")
        if self.present is True and value is None:
            reasons.append(f"{where} does not set {self.name}, which is required")
        if self.present is False and value is not None:
            reasons.append(f"{where} sets {self.name}={value}; {self.name} must not be set")
        return reasons


@dataclass(frozen=True)
class PlatformsPolicy(Policy):
    kind: ClassVar[str] = "platforms"
    require: tuple[str, ...] = ()

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        require = reader.texts("require", required=True, valid=_PLATFORM_RE.fullmatch,
                               expected="os/architecture[/variant]")
        return cls(policy_id or "platforms", require)

    def fields(self) -> dict[str, Any]:
        return {"require": list(self.require)}

    def check(self, document: dict[str, Any]) -> list[str]:
        have = document["platforms"]
        missing = [p for p in self.require if not any(h == p or h.startswith(p + "/") for h in have)]
        if not missing:
            return []
        return [f"platform {p} is missing (the candidate has {', '.join(have) or 'no known platform'})"
                for p in missing]


def _size(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB ({n:,} bytes)" if n >= 1024**2 else f"{n:,} bytes"


@dataclass(frozen=True)
class MaxSizePolicy(Policy):
    kind: ClassVar[str] = "max-size"
    bytes: int = 0
    of: str = "total"

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        limit = reader.take("bytes")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise bad(reader.at("bytes"), "required: a whole number of bytes, 0 or more")
        return cls(policy_id or "max-size", limit, reader.choice("of", ("total", "image")))

    def fields(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "of": self.of}

    def check(self, document: dict[str, Any]) -> list[str]:
        size = document["size"][self.of]
        if size <= self.bytes:
            return []
        what = "its blobs, referrers' included," if self.of == "total" else "its image (configs and layers)"
        return [f"{what} take {_size(size)}, more than the maximum {_size(self.bytes)}"]


@dataclass(frozen=True)
class LabelPolicy(Policy):
    kind: ClassVar[str] = "label"
    key: str = ""
    value: str | None = None

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        key = reader.text("key")
        assert key is not None
        return cls(policy_id or f"{cls.kind}-{key}", key, reader.text("value", required=False))

    def fields(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}

    def _missing(self, found: dict[str, Any], where: str) -> str | None:
        noun = self.kind
        if self.key not in found:
            wanted = f"={self.value}" if self.value is not None else ""
            return f"{where} has no {noun} {self.key}; {self.key}{wanted} is required"
        if self.value is not None and found[self.key] != self.value:
            return f"{where} has {noun} {self.key}={found[self.key]}, not the required {self.value}"
        return None

    def check(self, document: dict[str, Any]) -> list[str]:
        configs = _configs(document)
        if not configs:
            return [f"the artifact has no image config, so no label {self.key}"]
        return [r for c in configs if (r := self._missing(c["labels"], f"{_where(c)} config")) is not None]


@dataclass(frozen=True)
class AnnotationPolicy(LabelPolicy):
    kind: ClassVar[str] = "annotation"
    on: str = "root"

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        key = reader.text("key")
        assert key is not None
        return cls(policy_id or f"{cls.kind}-{key}", key, reader.text("value", required=False),
                   reader.choice("on", ("root", "manifests")))

    def fields(self) -> dict[str, Any]:
        return {**super().fields(), "on": self.on}

    def check(self, document: dict[str, Any]) -> list[str]:
        if self.on == "root":
            kind = "index" if document["index"] is not None else "manifest"
            found = self._missing(document["root"]["annotations"], f"the root {kind} {document['digest']}")
            return [found] if found else []
        manifests = [m for m in document["manifests"] if not m["attestation"]]
        return [r for m in manifests
                if (r := self._missing(m["annotations"], f"{_where(m)} manifest {m['digest']}")) is not None]


@dataclass(frozen=True)
class DeniedLayersPolicy(Policy):
    kind: ClassVar[str] = "denied-layers"
    digests: tuple[str, ...] = ()

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        digests = reader.texts("digests", required=True, valid=is_valid_digest,
                               expected="a digest (sha256:<64 hex>)")
        return cls(policy_id or "denied-layers", digests)

    def fields(self) -> dict[str, Any]:
        return {"digests": list(self.digests)}

    def check(self, document: dict[str, Any]) -> list[str]:
        denied = set(self.digests)
        return [f"{_where(m)} layer {i + 1} of {len(m['layers'])} is {layer['digest']}, a denied layer"
                for m in document["manifests"] for i, layer in enumerate(m["layers"]) if layer["digest"] in denied]


@dataclass(frozen=True)
class ReferrerPolicy(Policy):
    kind: ClassVar[str] = "referrer"
    artifact_type: str = ""

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        artifact_type = reader.text("artifactType")
        assert artifact_type is not None
        return cls(policy_id or f"referrer-{artifact_type}", artifact_type)

    def fields(self) -> dict[str, Any]:
        return {"artifactType": self.artifact_type}

    def check(self, document: dict[str, Any]) -> list[str]:
        found = sorted({r["artifactType"] or r["mediaType"] for r in document["referrers"]})
        if self.artifact_type in found:
            return []
        has = f"it has {', '.join(found)}" if found else "it has no referrers (were they left behind?)"
        return [f"no referrer of artifactType {self.artifact_type} travels with it; {has}"]


@dataclass(frozen=True)
class SignaturePolicy(Policy):
    kind: ClassVar[str] = "signature"
    needs_signatures: ClassVar[bool] = True
    public_key: str = ""
    key: PublicKey | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", load_public_key(self.public_key))

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        pem = reader.text("publicKey")
        assert pem is not None
        try:
            return cls(policy_id or "signature", pem.strip())
        except ValueError as exc:
            raise bad(reader.at("publicKey"), str(exc)) from None

    def fields(self) -> dict[str, Any]:
        return {"publicKey": self.public_key}

    def check(self, document: dict[str, Any]) -> list[str]:
        assert self.key is not None
        if document["signatures"] is None:
            return ["the document was built without its signatures"]
        problem = check_signatures(self.key, document["signatures"], document["digest"])
        return [problem] if problem else []


@dataclass(frozen=True)
class RegoPolicy(Policy):
    kind: ClassVar[str] = "rego"
    needs_signatures: ClassVar[bool] = True  # a module may judge them
    module: str = ""

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        module = reader.text("module")
        assert module is not None
        try:
            rego.check_module(module)
        except rego.RegoFailure as exc:
            raise bad(reader.at("module"), f"not a usable Rego policy: {exc}") from None
        return cls(policy_id or f"rego-{rego.package_of(module)}", module)

    def fields(self) -> dict[str, Any]:
        return {"module": self.module}

    def check(self, document: dict[str, Any]) -> list[str]:
        return rego.deny(self.module, document)


@dataclass(frozen=True)
class ExternalPolicy(Policy):
    kind: ClassVar[str] = "external"
    url: str = ""
    timeout_seconds: int = 600

    @classmethod
    def parse(cls, reader: Reader, policy_id: str | None) -> Policy:
        url = reader.text("url")
        assert url is not None
        if not url.startswith(("https://", "http://")):
            raise bad(reader.at("url"), "must be an http(s) URL")
        timeout = reader.take("timeoutSeconds")
        if timeout is None:
            timeout = 600
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 7 * 24 * 3600:
            raise bad(reader.at("timeoutSeconds"), "must be a whole number of seconds from 1 to 604800")
        return cls(policy_id or "external", url, timeout)

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "timeoutSeconds": self.timeout_seconds}

    def check(self, document: dict[str, Any]) -> list[str]:
        """The synchronous verdict; a run that can wait for a later one uses :meth:`answer`."""
        answer = self.answer(document, None)
        return [] if answer.verdict == "approve" else [answer.reason]

    def answer(self, document: dict[str, Any], callback: Callback | None) -> Answer:
        """The validator's verdict (``pending`` only when ``callback`` can still wait)."""
        return judge(self.id, self.url, self.timeout_seconds, document, callback)
