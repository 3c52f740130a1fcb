"""Settings: explicit argument > ``STRATACACHE_*`` environment variable > default.

Every environment variable stratacache reads is named here, once.
"""

from __future__ import annotations

import math
import os

from stratacache.errors import ConfigurationError

ENV_DISABLED = "STRATACACHE_DISABLED"
ENV_TTL = "STRATACACHE_TTL"
ENV_NAMESPACE = "STRATACACHE_NAMESPACE"
ENV_L1_MAXSIZE = "STRATACACHE_L1_MAXSIZE"
ENV_REDIS_URL = "STRATACACHE_REDIS_URL"
ENV_TABLE_NAME = "STRATACACHE_TABLE_NAME"
ENV_TABLE_KEY_ATTRIBUTE = "STRATACACHE_TABLE_KEY_ATTRIBUTE"
ENV_KEY_PREFIX = "STRATACACHE_KEY_PREFIX"
ENV_METRICS_INTERVAL = "STRATACACHE_METRICS_INTERVAL"
ENV_SIGNING_KEY = "STRATACACHE_SIGNING_KEY"
ENV_LOCK = "STRATACACHE_LOCK"
ENV_GENERATION_CHECK = "STRATACACHE_GENERATION_CHECK"
ENV_BREAKER_THRESHOLD = "STRATACACHE_BREAKER_THRESHOLD"
ENV_BREAKER_COOLDOWN = "STRATACACHE_BREAKER_COOLDOWN"
ENV_REDIS_CLUSTER = "STRATACACHE_REDIS_CLUSTER"
ENV_REDIS_MAX_VALUE_BYTES = "STRATACACHE_REDIS_MAX_VALUE_BYTES"
ENV_REDIS_TIMEOUT = "STRATACACHE_REDIS_TIMEOUT"
ENV_REDIS_IAM_USER = "STRATACACHE_REDIS_IAM_USER"
ENV_REDIS_IAM_CACHE = "STRATACACHE_REDIS_IAM_CACHE"
ENV_REDIS_IAM_SERVERLESS = "STRATACACHE_REDIS_IAM_SERVERLESS"
ENV_DYNAMODB_TIMEOUT = "STRATACACHE_DYNAMODB_TIMEOUT"
ENV_POWERTOOLS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"

DEFAULT_TTL = 300.0
DEFAULT_NAMESPACE = "stratacache"
DEFAULT_L1_MAXSIZE = 1024
DEFAULT_METRICS_INTERVAL = 60.0
DEFAULT_GENERATION_CHECK = 5.0
DEFAULT_METRICS_NAMESPACE = "stratacache"
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 5.0

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def env_str(name: str) -> str | None:
    """Return the variable's value, or ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flag(name: str) -> bool:
    """Read a yes/no variable; an unrecognised value is a configuration error."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be one of 1/0, true/false, yes/no, on/off, got {raw!r}")


def check_ttl(value: object, setting: str = "ttl") -> float | None:
    """Validate a TTL in seconds: a positive finite number, or ``None`` for no expiry."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{setting} must be a number of seconds or None, got {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{setting} must be a positive finite number, got {value!r}")
    return float(value)


def check_positive_int(value: object, setting: str) -> int:
    """Validate a positive whole number such as a maximum size."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{setting} must be a positive whole number, got {value!r}")
    return value


def _env_number(name: str) -> float | None:
    raw = env_str(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def resolve_ttl(explicit: float | None) -> float | None:
    """The decorator's TTL: the argument, else ``STRATACACHE_TTL``, else 300 seconds."""
    if explicit is not None:
        return check_ttl(explicit)
    from_env = _env_number(ENV_TTL)
    if from_env is not None:
        return check_ttl(from_env, ENV_TTL)
    return DEFAULT_TTL


def resolve_namespace(explicit: str | None) -> str:
    """The key namespace: the argument, else ``STRATACACHE_NAMESPACE``, else ``stratacache``."""
    namespace = explicit if explicit is not None else env_str(ENV_NAMESPACE) or DEFAULT_NAMESPACE
    if not isinstance(namespace, str) or not namespace or any(c.isspace() for c in namespace):
        raise ConfigurationError(
            f"namespace must be a non-empty string without spaces, got {namespace!r}"
        )
    return namespace


def resolve_l1_maxsize(explicit: int | None) -> int:
    """L1 capacity in entries: the argument, else ``STRATACACHE_L1_MAXSIZE``, else 1024."""
    if explicit is not None:
        return check_positive_int(explicit, "maxsize")
    raw = env_str(ENV_L1_MAXSIZE)
    if raw is None:
        return DEFAULT_L1_MAXSIZE
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{ENV_L1_MAXSIZE} must be a whole number, got {raw!r}") from None
    return check_positive_int(value, ENV_L1_MAXSIZE)


def _env_int(name: str) -> int | None:
    raw = env_str(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    return check_positive_int(value, name)


def resolve_breaker_threshold(explicit: int | None) -> int:
    """Failures in a row that open a tier's circuit breaker (``STRATACACHE_BREAKER_THRESHOLD``)."""
    if explicit is not None:
        return check_positive_int(explicit, "threshold")
    from_env = _env_int(ENV_BREAKER_THRESHOLD)
    return DEFAULT_BREAKER_THRESHOLD if from_env is None else from_env


def resolve_breaker_cooldown(explicit: float | None) -> float:
    """Seconds an open breaker skips its tier (``STRATACACHE_BREAKER_COOLDOWN``, default 5)."""
    setting, value = "cooldown", explicit
    if value is None:
        setting, value = ENV_BREAKER_COOLDOWN, _env_number(ENV_BREAKER_COOLDOWN)
    if value is None:
        return DEFAULT_BREAKER_COOLDOWN
    checked = check_ttl(value, setting)
    assert checked is not None
    return checked


def resolve_max_value_bytes(explicit: int | None, env_name: str | None = None) -> int | None:
    """A tier's largest storable value in bytes: the argument, else ``env_name``, else no limit."""
    if explicit is not None:
        return check_positive_int(explicit, "max_value_bytes")
    return None if env_name is None else _env_int(env_name)


def resolve_timeout(explicit: float | None, setting: str, env_name: str, default: float) -> float:
    """A network timeout in seconds: the argument, else ``env_name``, else ``default``."""
    value, name = explicit, setting
    if value is None:
        value, name = _env_number(env_name), env_name
    if value is None:
        return default
    checked = check_ttl(value, name)
    assert checked is not None
    return checked


def resolve_redis_cluster(explicit: bool | None) -> bool:
    """Whether the Redis URL names a cluster: the argument, else ``STRATACACHE_REDIS_CLUSTER``."""
    if explicit is not None:
        return bool(explicit)
    return env_flag(ENV_REDIS_CLUSTER)


def resolve_redis_iam() -> tuple[str, str, bool] | None:
    """``(user_id, cache_name, serverless)`` when ``STRATACACHE_REDIS_IAM_USER`` is set, else None.

    The environment's Redis tier then signs in with ElastiCache IAM auth tokens.
    """
    user = env_str(ENV_REDIS_IAM_USER)
    if user is None:
        return None
    cache = env_str(ENV_REDIS_IAM_CACHE)
    if cache is None:
        raise ConfigurationError(
            f"{ENV_REDIS_IAM_USER} needs {ENV_REDIS_IAM_CACHE}: the cache's name"
        )
    return user, cache, env_flag(ENV_REDIS_IAM_SERVERLESS)


def resolve_metrics_interval() -> float:
    """Seconds between automatic metric publications (``STRATACACHE_METRICS_INTERVAL``)."""
    value = _env_number(ENV_METRICS_INTERVAL)
    if value is None:
        return DEFAULT_METRICS_INTERVAL
    checked = check_ttl(value, ENV_METRICS_INTERVAL)
    assert checked is not None
    return checked


def resolve_generation_check(explicit: float | None) -> float:
    """Seconds between reads of a shared namespace generation (``STRATACACHE_GENERATION_CHECK``)."""
    if explicit is not None:
        checked = check_ttl(explicit, "generation_check")
    else:
        from_env = _env_number(ENV_GENERATION_CHECK)
        checked = (
            DEFAULT_GENERATION_CHECK
            if from_env is None
            else check_ttl(from_env, ENV_GENERATION_CHECK)
        )
    assert checked is not None
    return checked
