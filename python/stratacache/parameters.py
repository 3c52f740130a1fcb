"""A fleet-wide cache for Powertools Parameters: SSM Parameter Store, Secrets Manager, AppConfig.

Powertools keeps each value in the execution environment's memory, so a burst
of N cold starts still makes N ``GetParameter`` calls, and SSM throttles. Here
a value is read through the tiers (L1, then Redis, then DynamoDB) and fetched
from the service once per ``ttl`` for the whole fleet: on a miss, one
environment takes the cache's lease and fetches; the others wait for its value.

Values in the shared tiers can be signed (HMAC-SHA256 with ``signing_key`` or
``STRATACACHE_SIGNING_KEY``): an entry whose signature does not match (forged or
written with another key) is refused, logged by name, and fetched again.
Secrets (Secrets Manager, SSM ``SecureString`` with ``decrypt=True``) are shared
only when signed. Values never appear in log lines, errors or reprs.

Powertools is imported when the first provider is built, not with this module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

from stratacache import config
from stratacache.decorators import cached_tiered
from stratacache.errors import ConfigurationError
from stratacache.tiers import Tier

logger = logging.getLogger("stratacache")

KINDS: Final = ("ssm", "secrets", "appconfig")
_MIN_KEY_BYTES: Final = 16
_SSM_DECRYPT_ENV: Final = "POWERTOOLS_PARAMETERS_SSM_DECRYPT"


def _signing_key(explicit: bytes | str | None) -> bytes | None:
    raw = explicit if explicit is not None else config.env_str(config.ENV_SIGNING_KEY)
    if raw is None:
        return None
    key = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(key) < _MIN_KEY_BYTES:
        setting = "signing_key" if explicit is not None else config.ENV_SIGNING_KEY
        raise ConfigurationError(f"{setting} must be at least {_MIN_KEY_BYTES} bytes")
    return key


def _env_decrypt() -> bool:
    """Powertools' own default for ``decrypt`` (``POWERTOOLS_PARAMETERS_SSM_DECRYPT``)."""
    return os.environ.get(_SSM_DECRYPT_ENV, "").strip().lower() in config.TRUE_WORDS


def _kind_of(provider: object) -> str:
    """``ssm``, ``secrets``, ``appconfig`` for Powertools' providers, else the class name."""
    from aws_lambda_powertools.utilities.parameters import (
        AppConfigProvider,
        SecretsProvider,
        SSMProvider,
    )

    for kind, cls in (("ssm", SSMProvider), ("secrets", SecretsProvider)):
        if isinstance(provider, cls):
            return kind
    if isinstance(provider, AppConfigProvider):
        return "appconfig"
    return type(provider).__name__


def _canonical(node: object) -> object:
    if isinstance(node, bytes | bytearray):
        return {"__bytes__": bytes(node).hex()}
    if isinstance(node, dict):
        return {str(k): _canonical(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_canonical(v) for v in node]
    return node


class SharedParameters:
    """Powertools Parameters read once per ``ttl`` across every execution environment.

    Args:
        provider: ``"ssm"`` or ``"secrets"`` (Powertools' provider, built on first use),
            or a ready provider: ``SSMProvider(boto3_client=...)``, ``SecretsProvider()``,
            ``AppConfigProvider(environment=..., application=...)``, any ``BaseProvider``.
        ttl: seconds a value is shared before it is fetched again
            (default ``STRATACACHE_TTL`` or 300).
        grace: seconds an expired value is still served while one caller refreshes it,
            and instead of an error when the service fails.
        tiers: the chain (default: from the environment, as ``@cached_tiered``).
        namespace: first part of the keys (default ``STRATACACHE_NAMESPACE``).
        signing_key: HMAC key (16+ bytes) that signs shared values
            (default ``STRATACACHE_SIGNING_KEY``); required to share secrets.
        secret: whether values are secrets (default: Secrets Manager's are).

    Example:
        >>> params = SharedParameters("ssm", ttl=300)
        >>> params.get("/app/feature-flags", transform="json")  # doctest: +SKIP
        {'beta': True}
    """

    def __init__(
        self,
        provider: str | Any = "ssm",
        *,
        ttl: float | None = None,
        grace: float | None = None,
        tiers: Sequence[Tier] | None = None,
        namespace: str | None = None,
        signing_key: bytes | str | None = None,
        secret: bool | None = None,
        lock: bool | None = None,
    ) -> None:
        if isinstance(provider, str):
            if provider not in ("ssm", "secrets"):
                raise ConfigurationError(
                    f"provider must be 'ssm', 'secrets' or a Powertools provider, got {provider!r}"
                    " (AppConfig needs AppConfigProvider(environment=..., application=...))"
                )
            self.kind = provider
            self._provider: Any = None
        else:
            if not callable(getattr(provider, "get", None)):
                raise ConfigurationError(
                    "provider must be a Powertools parameters provider,"
                    f" got {type(provider).__name__}"
                )
            self.kind = _kind_of(provider)
            self._provider = provider
        self.secret = self.kind == "secrets" if secret is None else bool(secret)
        self._key = _signing_key(signing_key)
        if self.secret and self._key is None:
            raise ConfigurationError(
                f"signing_key (or {config.ENV_SIGNING_KEY}) is needed to share secrets"
                " through the cache tiers"
            )
        base = config.resolve_namespace(namespace)
        fetch = cached_tiered(
            ttl=ttl,
            tiers=tiers,
            namespace=f"{base}:params:{self.kind}",
            grace=grace,
            lock=lock,
        )
        self._fetch = fetch(self._sealed)

    def __repr__(self) -> str:
        return f"SharedParameters(kind={self.kind!r}, signed={self._key is not None})"

    @property
    def provider(self) -> Any:
        """The Powertools provider that reaches the service (built on first use)."""
        if self._provider is None:
            from aws_lambda_powertools.utilities import parameters

            factory = parameters.SSMProvider if self.kind == "ssm" else parameters.SecretsProvider
            self._provider = factory()
        return self._provider

    # ------------------------------------------------------------ signing

    def _signature(self, call: Sequence[object], value: object) -> str | None:
        if self._key is None:
            return None
        message = json.dumps(
            _canonical([self.kind, *call, value]), sort_keys=True, separators=(",", ":")
        )
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _trusted(self, call: Sequence[object], sealed: object) -> bool:
        if not isinstance(sealed, dict) or "value" not in sealed:
            return False
        expected = self._signature(call, sealed["value"])
        if expected is None:
            return True
        given = sealed.get("sig")
        return isinstance(given, str) and hmac.compare_digest(given, expected)

    def _sealed(
        self, method: str, name: str, transform: str | None, options: tuple[tuple[str, Any], ...]
    ) -> dict[str, object]:
        """Fetch from the service (bypassing Powertools' own per-environment cache) and sign."""
        fetch: Callable[..., object] = getattr(self.provider, method)
        value = fetch(name, transform=transform, force_fetch=True, **dict(options))
        call = (method, name, transform, options)
        return {"value": value, "sig": self._signature(call, value)}

    # ------------------------------------------------------------ reading

    def _read(
        self,
        method: str,
        name: str,
        transform: str | None,
        force_fetch: bool,
        options: dict[str, Any],
    ) -> Any:
        if self.kind == "ssm" and self._key is None and (options.get("decrypt") or _env_decrypt()):
            raise ConfigurationError(
                "decrypt=True shares a SecureString value:"
                f" set signing_key or {config.ENV_SIGNING_KEY}"
            )
        frozen = tuple(sorted(options.items()))
        call = (method, name, transform, frozen)
        if force_fetch:
            sealed = self._fetch.refresh(method, name, transform, frozen)
        else:
            sealed = self._fetch(method, name, transform, frozen)
        if not self._trusted(call, sealed):
            logger.warning(
                "stratacache refused the shared %s value of %s: its signature does not match;"
                " fetching it again",
                self.kind,
                name,
            )
            sealed = self._fetch.refresh(method, name, transform, frozen)
        return sealed["value"]

    def get(
        self,
        name: str,
        *,
        transform: str | None = None,
        force_fetch: bool = False,
        **sdk_options: Any,
    ) -> Any:
        """One parameter, secret or configuration, from the tiers or (once per ttl) the service.

        ``transform`` (``"json"``, ``"binary"``, ``"auto"``) and ``sdk_options`` (such as
        ``decrypt=True``, ``VersionStage=...``) go to Powertools and are part of the key.
        """
        return self._read("get", name, transform, force_fetch, sdk_options)

    def get_multiple(
        self,
        path: str,
        *,
        transform: str | None = None,
        force_fetch: bool = False,
        **sdk_options: Any,
    ) -> dict[str, Any]:
        """Every parameter under ``path`` (SSM ``GetParametersByPath``), shared like :meth:`get`."""
        found: dict[str, Any] = self._read(
            "get_multiple", path, transform, force_fetch, sdk_options
        )
        return found
