"""Ferry's test harness: real services on loopback and independent reference code.

Never imports `ferry`. Modules: `procs` (child processes, free ports), `registry` (distribution
registries, ACR-like setup), `tokenserver` (Docker token + ACR AAD exchange), `identity`
(App Service managed identity stand-in), `fakeregistry` (fault injection), `azurite`, and
`content` (deterministic test images and artifacts, push helpers).
"""
