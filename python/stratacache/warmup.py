"""Warm-up invocations: recognise them, load the hot keys into L1, return early.

A scheduled ping keeps execution environments alive; this makes the ping also
fill them. For each cache, the declared hot keys are read with one
``get_many`` (one Redis ``MGET``, one DynamoDB ``BatchGetItem`` for what Redis
lacked), which copies every hit into L1 and opens the tiers' connections, so
the next real request starts warm. The handler itself never runs for a warm-up.

Recognised events:

- serverless-plugin-warmup: ``{"source": "serverless-plugin-warmup"}`` (or the same
  ``source`` in the invocation's client context);
- lambda-warmer and similar: ``{"warmer": true}``;
- ours, as ``template.yaml``'s schedule sends it: ``{"stratacache": "warmup"}``, at the
  top of the event or in an EventBridge event's ``detail``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, ParamSpec, TypeVar, overload

from stratacache.tiered import TieredCache

logger = logging.getLogger("stratacache")

P = ParamSpec("P")
R = TypeVar("R")
WarmupAnswer = dict[str, object]

#: The event ``template.yaml``'s warm-up schedule sends (``WarmupSchedule``).
WARMUP_EVENT: Final[Mapping[str, str]] = {"stratacache": "warmup"}
PLUGIN_SOURCE: Final = "serverless-plugin-warmup"

HotKeys = tuple[TieredCache, Sequence[str]]
"""A cache and the keys (as given to ``cache.get``) to load into its L1."""


def _marked(node: object) -> bool:
    return isinstance(node, Mapping) and node.get("stratacache") == WARMUP_EVENT["stratacache"]


def is_warmup(event: object, context: object = None) -> bool:
    """Whether this invocation is a warm-up ping rather than real work.

    Example:
        >>> is_warmup({"warmer": True}), is_warmup({"httpMethod": "GET"})
        (True, False)
    """
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None)
    if isinstance(custom, Mapping) and custom.get("source") == PLUGIN_SOURCE:
        return True
    if not isinstance(event, Mapping):
        return False
    if event.get("source") == PLUGIN_SOURCE or event.get("warmer") is True:
        return True
    if _marked(event):
        return True
    # An EventBridge rule or schedule that passes the event through with our detail.
    return event.get("detail-type") == "Scheduled Event" and _marked(event.get("detail"))


def hot_calls(fn: Any, calls: Iterable[object]) -> HotKeys:
    """The hot keys of a cached function, from its calls' arguments.

    A tuple is a call's positional arguments; anything else is its one argument.

    Example:
        >>> from stratacache import cached
        >>> @cached
        ... def quote(symbol: str) -> float:
        ...     return 1.0
        >>> cache, keys = hot_calls(quote, ["AMZN", "NVDA"])
        >>> len(keys)
        2
    """
    cache = fn.cache
    if not isinstance(cache, TieredCache):
        raise TypeError(f"hot_calls takes a cached function, got {type(fn).__name__}")
    keys = [fn.cache_key(*(call if isinstance(call, tuple) else (call,))) for call in calls]
    return cache, keys


def load_hot_keys(hot: Iterable[HotKeys]) -> int:
    """Read each cache's hot keys with one ``get_many`` (into L1); the number found.

    Tier failures are the cache's business: they fail open, are counted and logged.
    """
    found = 0
    for cache, keys in hot:
        if keys:
            found += len(cache.get_many(keys))
    return found


@overload
def warmup(handler: Callable[P, R], /) -> Callable[P, R | WarmupAnswer]: ...


@overload
def warmup(
    handler: None = None,
    /,
    *,
    hot: Iterable[HotKeys] | Callable[[], Iterable[HotKeys]] = (),
    prepare: Iterable[Callable[[], object]] = (),
) -> Callable[[Callable[P, R]], Callable[P, R | WarmupAnswer]]: ...


def warmup(
    handler: Callable[P, R] | None = None,
    /,
    *,
    hot: Iterable[HotKeys] | Callable[[], Iterable[HotKeys]] = (),
    prepare: Iterable[Callable[[], object]] = (),
) -> Callable[P, R | WarmupAnswer] | Callable[[Callable[P, R]], Callable[P, R | WarmupAnswer]]:
    """Answer warm-up invocations before ``handler`` runs: prepare, load hot keys, return.

    Args:
        hot: ``(cache, keys)`` pairs, e.g. from :func:`hot_calls`, or a function that
            returns them (read at each warm-up).
        prepare: called first, in order, at each warm-up: whatever else opens
            connections or imports ahead of a real request (``stratacache.warm``,
            where it exists). One that raises is logged and skipped.

    A warm-up returns ``{"warmup": True, "loaded": <hot keys found>}``.

    Example:
        >>> @warmup
        ... def handler(event, context):
        ...     return "real work"
        >>> handler({"warmer": True}, None)
        {'warmup': True, 'loaded': 0}
    """
    steps = tuple(prepare)
    fixed = None if callable(hot) else tuple(hot)

    def decorate(func: Callable[P, R]) -> Callable[P, R | WarmupAnswer]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | WarmupAnswer:
            event = args[0] if args else kwargs.get("event")
            context = args[1] if len(args) > 1 else kwargs.get("context")
            if not is_warmup(event, context):
                return func(*args, **kwargs)
            for step in steps:
                try:
                    step()
                except Exception as exc:
                    logger.warning(
                        "stratacache warm-up step %s failed: %s",
                        getattr(step, "__qualname__", step),
                        type(exc).__name__,
                    )
            pairs = fixed if fixed is not None else tuple(hot())  # type: ignore[operator]
            return {"warmup": True, "loaded": load_hot_keys(pairs)}

        return wrapper

    return decorate if handler is None else decorate(handler)
