"""Settings: explicit argument > ``STRATACACHE_*`` environment variable > default.

Every environment variable stratacache reads is named here, once.
"""

from __future__ import annotations

import math
import os
from typing import Final

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
ENV_METRICS_DISABLED = "STRATACACHE_METRICS_DISABLED"
ENV_METRICS_FUNCTION_NAME = "STRATACACHE_METRICS_FUNCTION_NAME"
ENV_POWERTOOLS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_AWS_REGION = "AWS_REGION"
ENV_AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
ENV_POWERTOOLS_METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"
ENV_POWERTOOLS_DEV = "POWERTOOLS_DEV"
ENV_POWERTOOLS_FUNCTION_NAME = "POWERTOOLS_METRICS_FUNCTION_NAME"
# Set by Lambda itself:
ENV_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
ENV_LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"

WARM_INITIALIZATION_TYPES: Final = frozenset({"provisioned-concurrency", "snap-start"})
"""Initialisation types that run before any request waits: ``warm()`` runs by itself there."""

DEFAULT_TTL = 300.0
DEFAULT_NAMESPACE = "stratacache"
DEFAULT_L1_MAXSIZE = 1024
DEFAULT_METRICS_INTERVAL = 60.0
DEFAULT_GENERATION_CHECK = 5.0
DEFAULT_METRICS_NAMESPACE = "stratacache"
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 5.0

MAX_TTL: Final = 10 * 365 * 86_400
"""The longest lifetime (and any other duration setting) accepted: 10 years, in seconds.

Every tier can store it: the envelope's u64 epoch milliseconds, Redis ``PX`` and the
DynamoDB ``ttl`` attribute. For an entry that never expires pass ``ttl=None``."""

# One yes/no vocabulary for every variable, Powertools' own (its strtobool), matched
# without regard to case or surrounding spaces. Unset or blank means the default (off).
TRUE_WORDS: Final = ("1", "y", "yes", "t", "true", "on")
FALSE_WORDS: Final = ("0", "n", "no", "f", "false", "off")
_TRUE = frozenset(TRUE_WORDS)
_FALSE = frozenset(FALSE_WORDS)


def env_str(name: str) -> str | None:
    """Return the variable's value, or ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def parse_flag(name: str, raw: str) -> bool:
    """A yes/no value as Powertools reads its own: ``1/y/yes/t/true/on`` or ``0/n/no/f/false/off``.

    Example:
        >>> parse_flag("STRATACACHE_LOCK", " T "), parse_flag("STRATACACHE_LOCK", "off")
        (True, False)
    """
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"{name} must be one of {'/'.join(TRUE_WORDS)} (on) or {'/'.join(FALSE_WORDS)} (off), "
        f"got {raw!r}"
    )


def env_flag(name: str) -> bool:
    """Read a yes/no variable (unset or blank: off); an unrecognised value names the variable."""
    raw = os.environ.get(name, "")
    return False if not raw.strip() else parse_flag(name, raw)


def check_ttl(value: object, setting: str = "ttl") -> float | None:
    """Validate a duration in seconds: positive, at most :data:`MAX_TTL`, or ``None``.

    ``None`` means no expiry for a TTL (and "the default" for other durations).
    Huge values are refused rather than clamped, so a typo never turns into an entry
    that outlives the data it caches.

    Example:
        >>> check_ttl(300)
        300.0
        >>> check_ttl(10**400)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ConfigurationError: ttl must be at most 315360000 seconds ...
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{setting} must be a number of seconds or None, got {type(value).__name__}"
        )
    # Compared before any float() conversion: an int beyond a float's range must not
    # raise OverflowError, and its repr may be too long to print.
    if isinstance(value, float) and math.isnan(value):
        raise ConfigurationError(f"{setting} must be a positive finite number, got nan")
    if value <= 0:
        raise ConfigurationError(f"{setting} must be a positive finite number, got {value!r}")
    if value > MAX_TTL:
        hint = "; pass ttl=None for entries that never expire" if setting == "ttl" else ""
        raise ConfigurationError(
            f"{setting} must be at most {MAX_TTL} seconds (10 years, stratacache.config.MAX_TTL),"
            f" got {_describe(value)}{hint}"
        )
    return float(value)


def _describe(value: int | float) -> str:
    """A number for an error message, even one too long for ``repr``."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)


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
        setting = "namespace" if explicit is not None else ENV_NAMESPACE
        raise ConfigurationError(
            f"{setting} must be a non-empty string without spaces, got {namespace!r}"
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


def resolve_region(explicit: str | None) -> str | None:
    """The AWS region: the argument, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``.

    The Lambda runtime sets both; botocore reads only ``AWS_DEFAULT_REGION``, so a
    process given just ``AWS_REGION`` would otherwise find no region. ``None`` lets
    botocore look further (a profile's ``region``).

    Example:
        >>> resolve_region("eu-west-1")
        'eu-west-1'
    """
    return explicit or env_str(ENV_AWS_REGION) or env_str(ENV_AWS_DEFAULT_REGION)


def _powertools_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    return None if raw is None else parse_flag(name, raw)


def powertools_metrics_disabled() -> bool:
    """Whether Powertools itself would print no metrics, by its own rule (3.x).

    ``POWERTOOLS_METRICS_DISABLED`` decides when it is set; otherwise
    ``POWERTOOLS_DEV=true`` turns metrics off.
    """
    disabled = _powertools_flag(ENV_POWERTOOLS_METRICS_DISABLED)
    if disabled is not None:
        return disabled
    return bool(_powertools_flag(ENV_POWERTOOLS_DEV))


def resolve_metrics_disabled() -> tuple[bool, str | None]:
    """Whether cache metrics are off, and the variable that turned them off.

    ``STRATACACHE_METRICS_DISABLED=1`` turns them off; so does whatever turns
    Powertools' own metrics off.
    """
    if env_flag(ENV_METRICS_DISABLED):
        return True, ENV_METRICS_DISABLED
    if powertools_metrics_disabled():
        return True, ENV_POWERTOOLS_METRICS_DISABLED
    return False, None


def resolve_metrics_function_name(explicit: str | None = None) -> str | None:
    """The ``function_name`` dimension, or ``None`` unless ``STRATACACHE_METRICS_FUNCTION_NAME``.

    It is opt-in because every function then gets metrics of its own (cost and
    cardinality). The name is taken as Powertools takes its ColdStart metric's:
    ``explicit`` (a Powertools ``Metrics(function_name=...)``), else
    ``POWERTOOLS_METRICS_FUNCTION_NAME``, else Lambda's ``AWS_LAMBDA_FUNCTION_NAME``.
    """
    if not env_flag(ENV_METRICS_FUNCTION_NAME):
        return None
    return explicit or env_str(ENV_POWERTOOLS_FUNCTION_NAME) or env_str(ENV_LAMBDA_FUNCTION_NAME)


def initialized_ahead() -> bool:
    """Whether this environment was initialised before any caller waited for it.

    As Powertools 3.x decides its ColdStart metric: only
    ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`` counts.
    """
    return os.environ.get(ENV_LAMBDA_INITIALIZATION_TYPE) == "provisioned-concurrency"


def warms_at_init() -> bool:
    """Whether the first cache built should open the shared tiers' connections by itself.

    True when ``AWS_LAMBDA_INITIALIZATION_TYPE`` is ``provisioned-concurrency`` or
    ``snap-start`` (Lambda initialises those environments before any request waits
    for them), unless ``STRATACACHE_DISABLED`` is on. Never raises: it is asked while
    a cache is being built.
    """
    if os.environ.get(ENV_LAMBDA_INITIALIZATION_TYPE) not in WARM_INITIALIZATION_TYPES:
        return False
    return os.environ.get(ENV_DISABLED, "").strip().lower() not in _TRUE
