"""Powertools Parameters through the tiers: fetched once, shared, signed, never logged.

The provider here is a real Powertools provider (``BaseProvider`` with its
documented ``_get`` extension point) that counts the service calls it makes.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from stratacache import ConfigurationError, MemoryTier
from stratacache.envelope import Codec
from stratacache.errors import SerializationError
from stratacache.parameters import SharedParameters
from tests.support import BrokenTier, FakeClock

KEY = "k" * 32
SECRET = "s3cr3t-value-never-logged"


class CountingProvider(BaseProvider):
    """Answers from a dict; ``calls`` are the service calls a real provider would make."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.values = values
        self.calls: list[str] = []

    def _get(self, name: str, **sdk_options: Any) -> str:
        self.calls.append(name)
        return self.values[name]

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        self.calls.append(path)
        return {
            k.removeprefix(path).lstrip("/"): v
            for k, v in self.values.items()
            if k.startswith(path)
        }


def environment(provider: Any, shared: MemoryTier, **options: Any) -> SharedParameters:
    """A new execution environment: an empty L1 in front of ``shared`` (a stand-in for Redis)."""
    return SharedParameters(provider, tiers=[MemoryTier(), shared], ttl=60, **options)


class SharedBytes(MemoryTier):
    """A stand-in for Redis: a memory tier that is handed the envelope's bytes."""

    stores_bytes = True


@pytest.fixture
def shared() -> MemoryTier:
    return SharedBytes(name="L2")


def test_a_value_is_fetched_once_for_every_environment(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/flags": '{"beta": true}'})
    for _ in range(5):
        assert environment(provider, shared).get("/app/flags", transform="json") == {"beta": True}
    assert provider.calls == ["/app/flags"]


def test_transform_and_options_are_part_of_the_key(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/flags": '{"beta": true}'})
    params = environment(provider, shared)
    assert params.get("/app/flags") == '{"beta": true}'
    assert params.get("/app/flags", transform="json") == {"beta": True}
    assert params.get("/app/flags", VersionId="2") == '{"beta": true}'
    assert len(provider.calls) == 3


def test_force_fetch_reads_the_service_and_rewrites_the_shared_value(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/url": "https://old"})
    environment(provider, shared).get("/app/url")
    provider.values["/app/url"] = "https://new"
    assert environment(provider, shared).get("/app/url", force_fetch=True) == "https://new"
    assert environment(provider, shared).get("/app/url") == "https://new"
    assert len(provider.calls) == 2


def test_a_value_is_fetched_again_after_its_ttl() -> None:
    clock = FakeClock()
    provider = CountingProvider({"/app/url": "https://a"})
    params = SharedParameters(
        provider, tiers=[MemoryTier(timer=clock), MemoryTier(name="L2", timer=clock)], ttl=60
    )
    params.get("/app/url")
    clock.advance(59)
    params.get("/app/url")
    assert len(provider.calls) == 1
    clock.advance(2)
    params.get("/app/url")
    assert len(provider.calls) == 2


def test_get_multiple_is_shared_too(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/a": "1", "/app/b": "2", "/other/c": "3"})
    for _ in range(3):
        assert environment(provider, shared).get_multiple("/app") == {"a": "1", "b": "2"}
    assert provider.calls == ["/app"]


def test_a_forged_shared_value_is_refused_and_fetched_again(
    shared: MemoryTier, caplog: pytest.LogCaptureFixture
) -> None:
    provider = CountingProvider({"/app/db-password": SECRET})
    first = environment(provider, shared, signing_key=KEY, secret=True)
    assert first.get("/app/db-password") == SECRET
    (stored_key,) = [k for k in shared.data if "params" in k]
    blob = shared.get(stored_key)
    assert isinstance(blob, bytes)
    shared.set(stored_key, blob.replace(SECRET.encode(), b"attacker-chosen-value"), 60)
    second = environment(provider, shared, signing_key=KEY)
    with caplog.at_level(logging.WARNING, logger="stratacache"):
        assert second.get("/app/db-password") == SECRET
    assert len(provider.calls) == 2
    assert second._fetch.cache.stats()["L2"]["misses"] == 1  # a counted miss, and an error
    assert second._fetch.cache.stats()["L2"]["errors"] == 1
    assert stored_key in caplog.text
    assert "signature does not match" in caplog.text
    assert SECRET not in caplog.text
    assert "attacker-chosen" not in caplog.text


def test_a_value_signed_with_another_key_is_refused(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/x": "1"})
    environment(provider, shared, signing_key=KEY).get("/app/x")
    environment(provider, shared, signing_key="o" * 32).get("/app/x")
    assert len(provider.calls) == 2


def test_secrets_are_shared_only_when_signed() -> None:
    with pytest.raises(ConfigurationError, match="signing_key"):
        SharedParameters("secrets")
    with pytest.raises(ConfigurationError, match="signing_key"):
        SharedParameters(SecretsProvider())
    assert SharedParameters("secrets", signing_key=KEY).secret


def test_secure_strings_need_a_signing_key_to_be_shared(
    shared: MemoryTier, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = SSMProvider()
    with pytest.raises(ConfigurationError, match="signing_key"):
        environment(provider, shared).get("/app/secure", decrypt=True)
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_SSM_DECRYPT", "true")
    with pytest.raises(ConfigurationError, match="STRATACACHE_SIGNING_KEY"):
        environment(provider, shared).get("/app/secure")


def test_no_value_reaches_a_log_line_or_a_repr_when_the_tiers_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = CountingProvider({"/app/db-password": SECRET})
    params = SharedParameters(
        provider, tiers=[MemoryTier(), BrokenTier()], ttl=60, signing_key=KEY, secret=True
    )
    with caplog.at_level(logging.DEBUG):
        assert params.get("/app/db-password") == SECRET
    assert "broken" in caplog.text  # the tier failure was logged ...
    assert SECRET not in caplog.text  # ... without the value
    assert SECRET not in repr(params)
    assert KEY not in repr(params)


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"provider": "appconfig"}, "AppConfigProvider"),
        ({"provider": "vault"}, "provider"),
        ({"provider": object()}, "provider"),
        ({"signing_key": "short"}, "signing_key"),
        ({"ttl": -1}, "ttl"),
    ],
)
def test_bad_settings_raise_configuration_error_naming_them(
    options: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        SharedParameters(**options)


def test_a_rejected_signing_key_is_not_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        SharedParameters("ssm", signing_key="tiny-key")
    assert "tiny-key" not in str(raised.value)


def test_an_appconfig_provider_is_taken_as_it_is_and_not_a_secret() -> None:
    from aws_lambda_powertools.utilities.parameters import AppConfigProvider

    provider = AppConfigProvider(environment="prod", application="quotes")
    params = SharedParameters(provider)
    assert params.kind == "appconfig"
    assert params.provider is provider
    assert not params.secret


def test_a_short_signing_key_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRATACACHE_SIGNING_KEY", "short")
    with pytest.raises(ConfigurationError, match="STRATACACHE_SIGNING_KEY"):
        SharedParameters("ssm")


def test_the_default_provider_is_powertools_own_built_on_first_use() -> None:
    params = SharedParameters("ssm")
    assert isinstance(params.provider, SSMProvider)
    assert params.provider is params.provider


def test_importing_the_module_imports_neither_powertools_nor_boto3() -> None:
    probe = (
        "import json, sys, stratacache.parameters\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('aws_lambda_powertools', 'boto3', 'botocore', 'redis'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_signed_values_are_what_the_tiers_hold(shared: MemoryTier) -> None:
    provider = CountingProvider({"/app/x": "1"})
    environment(provider, shared, signing_key=KEY).get("/app/x")
    ((stored_key, stored),) = [(k, shared.get(k)) for k in list(shared.data)]
    assert Codec(signing_key=KEY).decode(stored_key, stored).value == "1"  # the envelope signs it
    with pytest.raises(SerializationError, match="signature"):
        Codec(signing_key="o" * 32).decode(stored_key, stored)
