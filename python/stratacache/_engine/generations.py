"""The namespace generation: how ``invalidate_all()`` reaches every environment at once.

Every entry records the generation it was written under; an entry of another
generation is a miss. ``invalidate_all()`` bumps a counter in the first shared
tier that keeps counters (Redis ``INCR``, DynamoDB ``UpdateItem ADD``), so no
key is scanned. Each environment reads the counter on its first lookup, in the
same round trip as that lookup, and then at most every ``check_every``
seconds; an entry written under a newer generation is proof of a bump too.
The counter never goes back: a generation lost with a flushed server is
bumped past the highest one this environment has seen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


class Generation:
    """This environment's view of one namespace's generation.

    Args:
        check_every: seconds between reads of the shared counter.
        clock: the clock ``due`` is measured on.
        shared: whether a shared counter exists (without one, nothing is due).

    Example:
        >>> seen = []
        >>> generation = Generation(5.0, clock=lambda: 0.0, shared=True)
        >>> generation.on_change.append(lambda: seen.append(generation.value))
        >>> generation.due <= 0.0, generation.observe(3), generation.observe(2), seen
        (True, True, False, [3])
    """

    def __init__(self, check_every: float, clock: Callable[[], float], shared: bool) -> None:
        self.value = 0
        self.check_every = check_every
        self.clock = clock
        self.due = -math.inf if shared else math.inf
        """When the shared counter is to be read next, on ``clock``."""
        self.on_change: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def checked(self) -> None:
        """The shared counter is being read now: the next read is due ``check_every`` later."""
        self.due = self.clock() + self.check_every

    def observe(self, shared: int) -> bool:
        """Adopt ``shared`` if it is newer; ``True`` when that changed the generation."""
        with self._lock:
            if shared <= self.value:
                return False
            self.value = shared
        for forget in self.on_change:
            forget()
        return True
