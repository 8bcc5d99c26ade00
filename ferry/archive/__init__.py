"""The transfer archive: an OCI layout packed as a metadata-first tar."""
