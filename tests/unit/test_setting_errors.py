"""Settings read from the environment: one yes/no vocabulary, and every error names its variable.

The vocabulary is Powertools' own (its ``strtobool``): ``1/y/yes/t/true/on``
are on, ``0/n/no/f/false/off`` are off, case and surrounding spaces ignored;
unset or blank is the setting's default; anything else is refused, naming the
variable and the words it takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from stratacache import MemoryTier, cached, config
from stratacache.envelope import resolve_signing_key
from stratacache.errors import ConfigurationError
from stratacache.options import CacheOptions
from stratacache.serialization import JsonSerializer, PickleSerializer
from stratacache.tiers import DynamoDBTier, RedisTier
from tests.support import ROOT

TRUE = ["1", "y", "yes", "t", "true", "on", "TRUE", " Yes ", "T"]
FALSE = ["0", "n", "no", "f", "false", "off", "OFF", " No ", "F"]

# Every yes/no variable, and how stratacache reads it.
FLAGS: dict[str, Callable[[], bool]] = {
    "STRATACACHE_DISABLED": lambda: config.env_flag(config.ENV_DISABLED),
    "STRATACACHE_LOCK": lambda: config.env_flag(config.ENV_LOCK),
    "STRATACACHE_REDIS_CLUSTER": lambda: config.resolve_redis_cluster(None),
    "STRATACACHE_METRICS_DISABLED": lambda: config.resolve_metrics_disabled()[0],
    "STRATACACHE_METRICS_FUNCTION_NAME": lambda: (
        config.resolve_metrics_function_name("fn") is not None
    ),
    "POWERTOOLS_METRICS_DISABLED": config.powertools_metrics_disabled,
}


def iam_serverless() -> bool:
    iam = config.resolve_redis_iam()
    assert iam is not None
    return iam[2]


FLAGS["STRATACACHE_REDIS_IAM_SERVERLESS"] = iam_serverless


@pytest.fixture(autouse=True)
def iam_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """STRATACACHE_REDIS_IAM_SERVERLESS is read only with an IAM user and cache set."""
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_USER", "user")
    monkeypatch.setenv("STRATACACHE_REDIS_IAM_CACHE", "cache")


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_every_flag_takes_the_powertools_words(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for word in TRUE:
        monkeypatch.setenv(name, word)
        assert FLAGS[name]() is True, (name, word)
    for word in FALSE:
        monkeypatch.setenv(name, word)
        assert FLAGS[name]() is False, (name, word)


@pytest.mark.parametrize("name", sorted(FLAGS))
@pytest.mark.parametrize("word", ["maybe", "2", "enabled", "tru"])
def test_any_other_word_is_refused_naming_the_variable_and_the_words(
    name: str, word: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, word)
    with pytest.raises(ConfigurationError) as refused:
        FLAGS[name]()
    message = str(refused.value)
    assert name in message
    assert "1/y/yes/t/true/on" in message
    assert "0/n/no/f/false/off" in message
    assert repr(word) in message


@pytest.mark.parametrize("name", sorted(set(FLAGS) - {"POWERTOOLS_METRICS_DISABLED"}))
@pytest.mark.parametrize("blank", ["", "  "])
def test_unset_or_blank_is_off(name: str, blank: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(name, raising=False)
    assert FLAGS[name]() is False
    monkeypatch.setenv(name, blank)
    assert FLAGS[name]() is False


def test_every_flag_stratacache_reads_is_tested_here() -> None:
    """A new yes/no variable must join the table above (so it keeps the one vocabulary)."""
    read = set()
    for path in (ROOT / "python" / "stratacache").rglob("*.py"):
        read |= set(re.findall(r"env_flag\((?:config\.)?(ENV_\w+)\)", path.read_text()))
    names = {getattr(config, constant) for constant in read}
    assert names <= set(FLAGS), names - set(FLAGS)


def test_lock_t_turns_the_lock_on_as_powertools_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_LOCK", "t")  # refused before: one vocabulary now
    assert CacheOptions.build(ttl=60).lock is True
    monkeypatch.setenv("STRATACACHE_LOCK", "f")
    assert CacheOptions.build(ttl=60).lock is False


def test_disabled_y_turns_caching_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATACACHE_DISABLED", "y")
    calls: list[int] = []

    @cached(ttl=60)
    def f() -> int:
        calls.append(1)
        return len(calls)

    assert [f(), f(), f()] == [1, 2, 3]


# ---------------------------------------------------------------- errors name the variable

BAD_SETTINGS: list[tuple[str, str, Callable[[], Any]]] = [
    ("STRATACACHE_TTL", "soon", lambda: config.resolve_ttl(None)),
    ("STRATACACHE_TTL", "-1", lambda: config.resolve_ttl(None)),
    ("STRATACACHE_NAMESPACE", "two words", lambda: config.resolve_namespace(None)),
    ("STRATACACHE_L1_MAXSIZE", "0", lambda: config.resolve_l1_maxsize(None)),
    ("STRATACACHE_L1_MAXSIZE", "many", MemoryTier),
    ("STRATACACHE_METRICS_INTERVAL", "often", config.resolve_metrics_interval),
    ("STRATACACHE_GENERATION_CHECK", "0", lambda: config.resolve_generation_check(None)),
    ("STRATACACHE_BREAKER_THRESHOLD", "1.5", lambda: config.resolve_breaker_threshold(None)),
    ("STRATACACHE_BREAKER_COOLDOWN", "-5", lambda: config.resolve_breaker_cooldown(None)),
    ("STRATACACHE_REDIS_URL", "ftp://cache:6379", RedisTier),
    ("STRATACACHE_REDIS_TIMEOUT", "slow", lambda: RedisTier("redis://cache:6379/0")),
    (
        "STRATACACHE_REDIS_MAX_VALUE_BYTES",
        "0",
        lambda: RedisTier("redis://cache:6379/0"),
    ),
    ("STRATACACHE_TABLE_NAME", "x", DynamoDBTier),
    ("STRATACACHE_TABLE_KEY_ATTRIBUTE", "no spaces", lambda: DynamoDBTier("cache-table")),
    ("STRATACACHE_DYNAMODB_TIMEOUT", "slow", lambda: DynamoDBTier("cache-table")),
    ("STRATACACHE_SIGNING_KEY", "short", lambda: resolve_signing_key(None, JsonSerializer())),
    ("STRATACACHE_SIGNING_KEY", "short", PickleSerializer),
    ("STRATACACHE_LOCK", "sometimes", lambda: cached(ttl=60)(lambda: 1)),
]
FREE_FORM = {
    "STRATACACHE_KEY_PREFIX",  # any text, blank included
    "STRATACACHE_REDIS_IAM_USER",  # any text
    "STRATACACHE_REDIS_IAM_CACHE",  # its absence is the error (tested below)
}


@pytest.mark.parametrize(
    ("name", "value", "read"), BAD_SETTINGS, ids=[f"{n}={v}" for n, v, _ in BAD_SETTINGS]
)
def test_a_bad_setting_is_refused_naming_the_variable(
    name: str, value: str, read: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        read()
    assert name in str(refused.value)


def test_an_iam_user_without_its_cache_names_both_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRATACACHE_REDIS_IAM_CACHE")
    with pytest.raises(ConfigurationError, match=r"STRATACACHE_REDIS_IAM_USER.*IAM_CACHE"):
        config.resolve_redis_iam()


def test_a_short_signing_key_argument_names_the_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", "a long enough environment key")
    with pytest.raises(ConfigurationError, match=r"^signing_key must be at least 16 bytes"):
        resolve_signing_key("short", JsonSerializer())


def test_every_variable_has_an_error_test_or_takes_any_value() -> None:
    variables = {
        value
        for name, value in vars(config).items()
        if name.startswith("ENV_") and value.startswith("STRATACACHE_")
    }
    tested = {name for name, _, _ in BAD_SETTINGS} | set(FLAGS) | FREE_FORM
    assert variables <= tested, sorted(variables - tested)
