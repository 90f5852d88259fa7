"""How long one call takes on the GPU and on the host that queues it, by CUDA events.

One pair of events is recorded on the legacy default stream around the call: that stream
waits for every blocking stream's earlier work and holds back their later work, so the pair
brackets whatever the call queued, whether numba-cuda launched it (on stream 0) or torch (on
its default stream). The host's seconds are the Python call's alone, from before the first
event to after the call returned, without waiting for the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CallTimes:
    """One call's seconds: on the host (queueing it), and on the device (between its events)."""

    host_s: float
    device_s: float


class DeviceTimer(Protocol):
    """What times one call on the device and on the host."""

    def time(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> CallTimes: ...


class EventTimer:
    """Times calls between two CUDA events on the default stream; make one per run of calls.

    ``events`` (start, stop) are numba-cuda's (``record``, ``synchronize``, ``elapsed_time``
    in milliseconds) unless given.
    """

    def __init__(self, events: tuple[Any, Any] | None = None) -> None:
        if events is None:
            from numba import cuda

            # numba-cuda's events record timing by default
            events = (cuda.event(), cuda.event())
        self.start: Any = events[0]
        self.stop: Any = events[1]

    def time(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> CallTimes:
        """Run ``call(*args, **kwargs)`` once and wait for the device; its :class:`CallTimes`."""
        self.start.record(0)
        started = time.perf_counter()
        call(*args, **kwargs)
        host_s = time.perf_counter() - started
        self.stop.record(0)
        self.stop.synchronize()
        return CallTimes(host_s, self.start.elapsed_time(self.stop) / 1e3)
