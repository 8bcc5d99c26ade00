"""The transfer archive: an OCI layout packed as a metadata-first tar (format, stores, range
readers, catalog). Imported by ``ferry/transports/archive.py``; imports ``ferry/oci`` and the Azure
error translator."""
