"""The garbage collector around a client's one-time build.

Building a boto3 client loads botocore's service model and building a redis-py
client imports and sets up its connection classes: tens of thousands of
long-lived objects made at once. Left alone, the collector walks them several
times while they are made (one full collection right after botocore loads the
DynamoDB model took 7 ms of a cold start), and finds nothing to free.

:func:`quiet_build` pauses the collector for the build and restores the state
it found (a collector the user disabled stays disabled), then moves what the
process holds so far into the permanent generation (:func:`gc.freeze`), so
later collections skip the client and the modules it loaded. Objects frozen
stay alive until :func:`gc.unfreeze`; at a client's first build that is the
process's start-up state, which lives as long as the environment anyway.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_build() -> Iterator[None]:
    """Run a client's build with the collector paused, then freeze what it made.

    Example:
        >>> import gc
        >>> with quiet_build():
        ...     gc.isenabled()
        False
        >>> gc.isenabled()
        True
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
