"""The Distribution API client: requests, auth flow, credentials, docker config, retries.
Imported by ``ferry/transports`` and ``ferry/jobs``; imports only ``ferry/oci``, ``errors``,
``redact``, ``settings`` and ``reference``."""
