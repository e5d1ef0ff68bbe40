"""The shared kernel (floor 0): what every app needs and no app owns. Imports no app.

Errors and the DRF exception handler (`core.errors`, `core.exceptions`), money (`core.money`),
advisory locks (`core.locks`), the metrics registry (`core.metrics`), the client address
(`core.net`, `core.throttling`), shared list filters and admin pieces (`core.filters`,
`core.admin`), request parsing and guards (`core.parsers`, `core.guards`) and the embedded
cache (`core.cache`). See docs/architecture.md.
"""
