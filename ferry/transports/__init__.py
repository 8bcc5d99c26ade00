"""Storage forms as Source and Destination (registry, OCI layout, transfer archive); the contract
is :mod:`ferry.transports.base`. Imported by the engine (:mod:`ferry.copy`) and ``ferry/jobs``;
imports ``ferry/registry``, ``ferry/archive``, ``ferry/oci`` and the Azure blob edge."""
