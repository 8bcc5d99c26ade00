"""OCI and Docker formats: media types, descriptors, manifests, the layout index, referrers
fallback tags. Pure; imported by everything above it; imports only ``ferry.errors``."""
