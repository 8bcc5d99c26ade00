"""ACR Transfer's model: pipelines, runs and importImage parsed once into typed objects, turned into
a JobSpec, the run response shaped once, the Table store and the ACR importImage handoff.
Imported by the faces (``api``, ``cli``, ``orchestrations``, ``activities``); imports ``ferry/jobs``
and the Azure edge."""
