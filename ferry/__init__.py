"""Ferry: move container images and OCI artifacts between registries, archives and Azure Blob Storage.

The core library. It never imports ``azure.functions``, ``function_app`` or a face (``api``, ``cli``,
``orchestrations``, ``activities``, ``runner``); the Functions app and the CLI both stand on it.
Floors, top down: ``jobs``, ``transfer`` → ``copy``/``plan`` → ``transports``, ``archive``,
``registry``, ``azure`` → ``oci``, ``settings``, ``errors``, ``redact``.
"""

__version__ = "0.1.0"
