"""The one exception family of stratacache.

Configuration mistakes raise early with the setting's name; runtime tier
errors are caught by :class:`~stratacache.tiered.TieredCache` and never reach
the caller of a cached function.
"""

from __future__ import annotations


class StratacacheError(Exception):
    """Base class of every error stratacache raises."""


class ConfigurationError(StratacacheError, ValueError):
    """A setting (argument or ``STRATACACHE_*`` variable) is missing or invalid.

    The message names the setting, e.g. ``ttl must be a positive number, got -1``.
    """


class SetupError(ConfigurationError):
    """A tier cannot work as its resource is set up: the message says what to fix.

    A missing table, a table with another key schema, no AWS region, a TLS
    mismatch. Unlike other configuration errors it shows up only when the tier
    is used, so the cache treats it as a tier failure: it logs it once per
    execution environment and carries on without the tier (fail-open).
    """


class KeyBuildError(StratacacheError, TypeError):
    """An argument of a cached call cannot be turned into a stable cache key."""


class SerializationError(StratacacheError):
    """A value cannot be encoded, or stored bytes cannot be decoded."""


class InvalidationError(StratacacheError):
    """A strict invalidation (``delete(..., strict=True)``) could not reach every tier."""


class PartialReadError(StratacacheError):
    """A tier's batch read got only part of its answer.

    ``found`` is aligned with the keys asked for (``MISS`` where nothing
    arrived) and ``failed`` counts the keys the tier could not read; the cache
    keeps what arrived and counts the rest as errors.
    """

    def __init__(self, message: str, found: list[object], failed: int) -> None:
        super().__init__(message)
        self.found = found
        self.failed = failed
