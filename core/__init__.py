"""The shared kernel (floor 0): what every app needs and no app owns. Imports no app.

So far: the client address (`core.net`), money and number parsing (`core.money`), and the
request-shape guards (`core.guards`). See docs/architecture.md.
"""
