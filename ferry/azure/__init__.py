"""The one Azure edge: error translation, blob access and copy, Key Vault, ARM, claims.
Imported by ``ferry/archive``, ``ferry/transports``, ``ferry/jobs``, ``ferry/transfer`` and the faces;
imports only ``ferry.errors``, ``ferry.redact`` and ``ferry.settings``."""
