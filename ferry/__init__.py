"""Ferry: move container images and OCI artifacts between registries, archives and Azure Blob Storage.

The core library. It never imports ``azure.functions``; the Functions app and the CLI both stand on it.
"""

__version__ = "0.1.0"
