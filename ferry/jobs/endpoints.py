"""The one place that opens a job's endpoints as a Source or a Destination.

What a job needs besides its JSON (settings, where credentials are kept, connection strings the
CLI was given, the blob location cache) is a :class:`JobEnvironment`, built by the face that runs
the job. Everything opened is closed when the caller's ``ExitStack`` closes.

May be imported by ``ferry/jobs`` and the faces.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ferry.azure.blob import (
    BlobLocation,
    ConnectionStringAuth,
    ManagedIdentityAuth,
    SasTokenAuth,
    StorageAuth,
    auto_auth,
)
from ferry.azure.claims import ClaimStore, MemoryClaimStore
from ferry.blobcache import BlobLocationCache
from ferry.egress import EgressDeniedError, EgressPolicy
from ferry.errors import CredentialError, UsageError
from ferry.jobs.spec import ArchiveEndpoint, Endpoint, JobSpec, LayoutEndpoint, RegistryEndpoint, StorageAccess
from ferry.reference import endpoint_for
from ferry.registry.client import RegistryClient
from ferry.registry.credentials import Credentials
from ferry.registry.dockerconfig import resolve_credentials
from ferry.registry.retry import RetryPolicy
from ferry.registry.upload import UploadSessions
from ferry.settings import Settings
from ferry.transports.archive import ArchiveDestination, ArchiveSource, is_blob_url, open_destination, open_source
from ferry.transports.base import Destination, Source
from ferry.transports.layout import LayoutDestination, LayoutSource
from ferry.transports.registry import RegistryDestination, RegistrySource


@dataclass
class JobEnvironment:
    """The runtime side of a job: never serialized, never in orchestration history.

    ``check_credentials``: sign in up front with given credentials, so rejected ones fail the job
    (exit 4) rather than every artifact (the CLI's behaviour). ``egress``: the allow-list every host
    must pass before a connection (the app's); None lets the job reach any host (the CLI's).
    """

    settings: Settings = field(default_factory=Settings)
    claims: ClaimStore = field(default_factory=MemoryClaimStore)
    connection_strings: tuple[str, ...] = ()
    cache: BlobLocationCache | None = None
    check_credentials: bool = False
    egress: EgressPolicy | None = None
    #: Where chunked uploads in progress are remembered for the next process to resume.
    upload_sessions: UploadSessions | None = None

    @property
    def all_connection_strings(self) -> tuple[str, ...]:
        return self.connection_strings + self.settings.storage_connection_strings


def check_endpoint(endpoint: Endpoint, egress: EgressPolicy | None, what: str) -> None:
    """Refuse ``endpoint`` before any connection unless every host it names is allowed (the app's
    rule; a managed-identity token also needs https). Does nothing without a policy (the CLI)."""
    if egress is None:
        return
    if isinstance(endpoint, RegistryEndpoint):
        egress.check_host(endpoint_for(endpoint.registry), f"{what} registry {endpoint.registry}")
    elif isinstance(endpoint, ArchiveEndpoint):
        if not is_blob_url(endpoint.url):
            raise EgressDeniedError(f"{what}: {endpoint.display} is a local path; the app reads and writes blobs only")
        check_storage(endpoint.url, endpoint.storage, egress, f"{what} {endpoint.display}")
    else:
        raise EgressDeniedError(f"{what}: {endpoint.display} is a local layout; the app reads and writes blobs only")


def check_job(spec: JobSpec, egress: EgressPolicy | None) -> None:
    """Refuse a job whose source or destination names a host off the allow-list."""
    check_endpoint(spec.source, egress, "source")
    check_endpoint(spec.destination, egress, "destination")


def check_storage(url: str, access: StorageAccess, egress: EgressPolicy | None, what: str) -> None:
    """Refuse a blob ``url`` or its Key Vault secret off the allow-list (https for a managed identity's
    token and for Key Vault) before anything connects. Does nothing without a policy (the CLI)."""
    if egress is None:
        return
    egress.check_url(url, what, https=access.mode == "ManagedIdentity")
    if access.key_vault_uri:
        egress.check_url(access.key_vault_uri, f"{what} Key Vault secret", https=True)


def storage_auth(url: str, access: StorageAccess, env: JobEnvironment) -> StorageAuth | None:
    """How to reach the blob at ``url`` (None for a local path), its hosts checked first."""
    if not is_blob_url(url):
        return None
    location = BlobLocation.parse(url)
    check_storage(url, access, env.egress, f"blob {location}")
    if access.mode == "SasToken":
        return SasTokenAuth(secret_uri=access.key_vault_uri, ca_bundle=env.settings.keyvault_ca_bundle)
    if access.mode == "ManagedIdentity":
        return ManagedIdentityAuth()
    if access.mode == "ConnectionString":
        found = env.all_connection_strings
        auth = ConnectionStringAuth(found)
        auth.for_account(location.account)  # fail now, naming the account, if none matches
        return auth
    return auto_auth(location, env.all_connection_strings)


def registry_credentials(endpoint: RegistryEndpoint, env: JobEnvironment) -> Credentials:
    """The claim's ``{username, password, registry}`` if named (refused unless ``registry`` is this
    endpoint's), else Azure AD or docker's config (:func:`ferry.registry.dockerconfig.resolve_credentials`)."""
    if endpoint.credentials_ref:
        found = env.claims.get_json(endpoint.credentials_ref)
        bound = found.get("registry")
        if bound != endpoint.registry:  # a stored password goes only to the host it was given for
            raise CredentialError(f"the credentials {endpoint.credentials_ref} were given for registry "
                                  f"{bound or '(none)'}, not {endpoint.registry}; give them again for this registry")
        return Credentials.from_user_pass(found.get("username") or None, found.get("password"))
    return resolve_credentials(endpoint.registry, None, azure_ad=endpoint.azure_ad,
                               config=env.settings.docker_config)


def registry_client(endpoint: RegistryEndpoint, env: JobEnvironment, stack: ExitStack,
                    parallelism: int) -> RegistryClient:
    credentials = registry_credentials(endpoint, env)
    insecure = endpoint.insecure or endpoint.registry in env.settings.insecure_registries
    retry = RetryPolicy(attempts=env.settings.retry_attempts, max_elapsed=env.settings.retry_seconds)
    client = stack.enter_context(RegistryClient(endpoint.registry, credentials, insecure=insecure, retry=retry,
                                                max_connections=max(8, parallelism * 2), egress=env.egress,
                                                sessions=env.upload_sessions))
    if env.check_credentials and not credentials.is_anonymous:
        client.check_access()
    return client


def open_job_source(endpoint: Endpoint, env: JobEnvironment, stack: ExitStack, parallelism: int = 8) -> Source:
    """``endpoint`` opened for reading; an archive's metadata is checked as it opens."""
    check_endpoint(endpoint, env.egress, "source")
    if isinstance(endpoint, RegistryEndpoint):
        return RegistrySource(registry_client(endpoint, env, stack, parallelism), env.cache)
    if isinstance(endpoint, LayoutEndpoint):
        return LayoutSource(endpoint.path)
    return stack.enter_context(open_source(endpoint.url, storage_auth=storage_auth(endpoint.url, endpoint.storage,
                                                                                   env)))


def open_job_destination(endpoint: Endpoint, env: JobEnvironment, stack: ExitStack,
                         parallelism: int = 8) -> Destination:
    """``endpoint`` opened for writing. An archive is held (not published) until the job's finish."""
    check_endpoint(endpoint, env.egress, "destination")
    if isinstance(endpoint, RegistryEndpoint):
        return RegistryDestination(registry_client(endpoint, env, stack, parallelism), env.cache)
    if isinstance(endpoint, LayoutEndpoint):
        return LayoutDestination(endpoint.path)
    baseline = load_baseline(endpoint.baseline, endpoint.storage, env) if endpoint.baseline else frozenset()
    return stack.enter_context(open_destination(
        endpoint.url, overwrite=endpoint.overwrite, hold=True, baseline=baseline,
        storage_auth=storage_auth(endpoint.url, endpoint.storage, env)))


def archive_of(endpoint: Source | Destination) -> ArchiveDestination | ArchiveSource | None:
    return endpoint if isinstance(endpoint, ArchiveDestination | ArchiveSource) else None


def load_baseline(text: str, access: StorageAccess, env: JobEnvironment) -> frozenset[str]:
    """Digests carried by an earlier archive, or listed in its ``ferry inspect --json`` catalog."""
    if not is_blob_url(text) and text.endswith(".json"):
        try:
            data = json.loads(Path(text).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"baseline {text!r}: cannot read the catalog: {exc}") from exc
        digests = data.get("blob_digests") if isinstance(data, dict) else None
        if not isinstance(digests, list):
            raise UsageError(f"baseline {text!r} has no 'blob_digests' list (make it with ferry inspect --json)")
        return frozenset(d for d in digests if isinstance(d, str))
    with open_source(text, storage_auth=storage_auth(text, access, env)) as baseline:
        return frozenset(name.split("/", 1)[1].replace("/", ":", 1) for name in baseline.members
                         if name.startswith("blobs/"))


def delete_archive_source(endpoint: ArchiveEndpoint, env: JobEnvironment, version: str) -> None:
    """Delete the archive ``endpoint`` names, only at ``version`` (ConflictError if rewritten since)."""
    from ferry.transports.archive import delete_archive

    delete_archive(endpoint.url, storage_auth(endpoint.url, endpoint.storage, env), version)
