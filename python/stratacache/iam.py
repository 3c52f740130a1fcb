"""IAM authentication tokens for ElastiCache (Redis OSS 7+ / Valkey 7.2+ with TLS).

An IAM-enabled ElastiCache user authenticates with ``AUTH user-id token``,
where the token is a SigV4-presigned ``connect`` request valid for 15
minutes. :class:`ElastiCacheIAMProvider` is a redis-py credential provider:
redis-py asks it for credentials at every (re)connection, so a connection
replaced after a Lambda thaw gets a fresh token. ``botocore`` is imported when
the first token is signed, never by ``import stratacache``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

from stratacache.config import check_ttl, resolve_region
from stratacache.errors import ConfigurationError

TOKEN_LIFETIME: Final = 900
"""Seconds an ElastiCache IAM token is accepted after signing."""


class ElastiCacheIAMProvider:
    """Credentials ``(user_id, token)`` for an IAM-enabled ElastiCache user.

    Args:
        user_id: the ElastiCache user id (also its user name).
        cache_name: the replication group id, or the serverless cache's name.
        region: the cache's region (default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``).
        serverless: ``True`` for an ElastiCache Serverless cache.
        reuse_for: seconds a signed token is reused before a new one is signed;
            below the 15 minutes a token is valid.
        session: a botocore session whose credentials sign the token (default:
            a new session on the environment's credentials, i.e. the Lambda role).
        clock: monotonic seconds; inject a fake one in tests.

    The token is a secret: it never appears in ``repr`` or in stratacache's logs.

    Example:
        >>> provider = ElastiCacheIAMProvider("app-user", "my-cache", region="eu-west-1")
        >>> tier = RedisTier("rediss://my-cache.xxxxxx.cache.amazonaws.com:6379/0",
        ...                  credential_provider=provider)  # doctest: +SKIP
    """

    def __init__(
        self,
        user_id: str,
        cache_name: str,
        *,
        region: str | None = None,
        serverless: bool = False,
        reuse_for: float = 600.0,
        session: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not user_id or not isinstance(user_id, str):
            raise ConfigurationError(f"user_id must be a non-empty string, got {user_id!r}")
        if not cache_name or not isinstance(cache_name, str):
            raise ConfigurationError(f"cache_name must be a non-empty string, got {cache_name!r}")
        resolved = resolve_region(region)
        if not resolved:
            raise ConfigurationError(
                "ElastiCacheIAMProvider needs an AWS region: pass region=... or set AWS_REGION"
            )
        reuse = check_ttl(reuse_for, "reuse_for")
        assert reuse is not None
        if reuse >= TOKEN_LIFETIME:
            raise ConfigurationError(
                f"reuse_for must be below a token's lifetime of {TOKEN_LIFETIME}s, got {reuse}"
            )
        self.user_id = user_id
        self.cache_name = cache_name
        self.region = resolved
        self.serverless = serverless
        self.reuse_for = reuse
        self.clock = clock
        self.signed = 0
        """How many tokens this provider has signed."""
        self._session = session
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ElastiCacheIAMProvider(user_id={self.user_id!r}, cache_name={self.cache_name!r}, "
            f"region={self.region!r}, serverless={self.serverless})"
        )

    def get_credentials(self) -> tuple[str, str]:
        """``(user_id, token)``; the token is signed again once ``reuse_for`` has passed."""
        with self._lock:
            now = self.clock()
            if self._token is None or now >= self._expires:
                self._token = self._sign()
                self._expires = now + self.reuse_for
                self.signed += 1
            return self.user_id, self._token

    def _sign(self) -> str:
        import botocore.session
        from botocore.model import ServiceId
        from botocore.signers import RequestSigner

        session = self._session or botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "ElastiCacheIAMProvider found no AWS credentials to sign the auth token with"
            )
        signer = RequestSigner(
            ServiceId("elasticache"),
            self.region,
            "elasticache",
            "v4",
            credentials,
            session.get_component("event_emitter"),
        )
        query = {"Action": "connect", "User": self.user_id}
        if self.serverless:
            query["ResourceType"] = "ServerlessCache"
        request = {
            "method": "GET",
            "url": f"https://{self.cache_name}/?{_urlencode(query)}",
            "body": {},
            "headers": {},
            "context": {},
        }
        signed: str = signer.generate_presigned_url(
            request,
            operation_name="connect",
            expires_in=TOKEN_LIFETIME,
            region_name=self.region,
        )
        return signed.removeprefix("https://")


def _urlencode(query: dict[str, str]) -> str:
    from urllib.parse import urlencode  # only when a token is signed, not at import

    return urlencode(query)
