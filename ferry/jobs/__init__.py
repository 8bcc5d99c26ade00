"""Copy jobs: one typed spec, one way to open its endpoints, one set of phases.

* :mod:`~ferry.jobs.spec`: :class:`JobSpec` and its parts, with a JSON round trip.
* :mod:`~ferry.jobs.endpoints`: the one place a location is opened as a Source or Destination.
* :mod:`~ferry.jobs.selection`: REF, tag and archive-content expansion into copy requests.
* :mod:`~ferry.jobs.gate`: the seam between plan and transfer, where gates may refuse artifacts.
* :mod:`~ferry.jobs.phases`: plan / transfer / finish (one result type each) and the in-process run.

Imports the engine (:mod:`ferry.copy`), transports, archive, registry and the Azure edge; is
imported by ``ferry/transfer``, ``ferry/sync`` and the faces. Never imports a face.
"""
