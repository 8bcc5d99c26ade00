"""Scheduled syncs (issue 9): keep a copy of upstream repositories, gated and promoted.

This room holds what a sync decides, apart from how it runs: :mod:`~ferry.sync.filters`, the tag
selection chain (include regexes and/or a SemVer range → exclude regexes → latest N), with
:mod:`~ferry.sync.versions`, tags read as versions and npm-style ranges. Sync definitions, gate
policies and promotion build on it here; the timer trigger, the orchestration and ``ferry tags`` /
``ferry sync`` are faces that call it.

A sync is a job: this room may import ``ferry/jobs``, ``ferry/transfer/fields`` and the floors below
them (``ferry/oci``, ``ferry/errors`` ...). It is imported by the faces (``api/``, ``cli/``,
``activities/``, ``orchestrations/``) and by nothing else in the core; it never imports a face.
"""
