"""Tier failures caused by how a resource is set up, raised again as errors that say what to fix.

A missing table surfaces as ``ResourceNotFoundException: Requested resource not
found`` and a TLS mismatch as a timeout; neither names the setting to change.
Each remote tier declares an ``explain(tier, exc)`` that recognises such a
failure and returns a :class:`~stratacache.errors.SetupError` naming the fix,
and :func:`explain_failures` wraps the tier's operations with it once, at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from stratacache.errors import SetupError

Explain = Callable[[Any, Exception], SetupError | None]


def explain_failures(cls: type, methods: Iterable[str], explain: Explain) -> None:
    """Make ``cls``'s ``methods`` raise ``explain``'s :class:`SetupError` for failures it knows.

    Other failures pass through unchanged; the original one is the new error's cause.

    Example:
        >>> class Tier:
        ...     def get(self, key):
        ...         raise LookupError("Requested resource not found")
        >>> explain_failures(Tier, ["get"], lambda tier, exc: SetupError("create the table"))
        >>> Tier().get("k")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        SetupError: create the table
    """
    for name in methods:
        setattr(cls, name, _explained(getattr(cls, name), explain))


def _explained(method: Callable[..., Any], explain: Explain) -> Callable[..., Any]:
    @functools.wraps(method)
    def explained(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SetupError:
            raise
        except Exception as exc:
            problem = explain(self, exc)
            if problem is None:
                raise
            raise problem from exc

    return explained


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
