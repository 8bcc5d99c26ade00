"""Activities: thin adapters, JSON in → one call into ``ferry/`` → JSON out.

An activity raises only for transient faults (so ``call_activity_with_retry`` retries them); a
permanent failure comes back as ``{"error": message}`` and is reported, not retried.

Imported by ``function_app`` only; each calls one function of ``ferry/``.
"""
