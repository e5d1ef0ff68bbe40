"""What every simulated server shares: the admin's latency and error-rate knobs."""

import random
import time

from .errors import TransientGatewayError


def load_knobs(server: str):
    """The knobs row of `server`, or None when nobody set any (the Web API stand-in reads
    its own fault knobs from it)."""
    from .models import SimulatorKnobs

    return SimulatorKnobs.objects.filter(server=server).first()


def apply_knobs(server: str) -> None:
    """Sleep for the configured latency, then fail at the configured rate (transient)."""
    from .models import SimulatorKnobs

    knobs = SimulatorKnobs.objects.filter(server=server).only("latency_ms", "error_rate").first()
    if knobs is None:
        return
    if knobs.latency_ms:
        time.sleep(knobs.latency_ms / 1000)
    if knobs.error_rate and random.random() < float(knobs.error_rate):
        raise TransientGatewayError(f"simulated {server} fault (error_rate knob)", gateway=server)
