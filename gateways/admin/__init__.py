"""Staff screens of the simulated servers: state and knobs, one module per server."""

from . import broker, demo, knobs, mt5, telegram  # noqa: F401
