"""State of the simulated outside servers. They are part of the product (what `make run`
uses), and keep their state in the database so web, worker and beat see one server."""

from .broker import *  # noqa: F403
from .demo import *  # noqa: F403
from .knobs import SimulatorKnobs
from .mt5 import *  # noqa: F403
from .telegram import *  # noqa: F403

__all__ = ["SimulatorKnobs"]
