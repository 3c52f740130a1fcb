"""One Redis URL parser: every credential form is masked, every malformed URL is refused
with the setting's name, and no error quotes any part of the URL."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import parse_url as _redis_parse_url

from stratacache.errors import ConfigurationError
from stratacache.tiers import RedisTier
from stratacache.urls import parse_redis_url

SECRET = "Pw-7Kq-SECRET"


def redis_parse_url(url: str) -> dict[str, Any]:
    """redis-py 8.1's own reading of a URL, to compare with ours."""
    parsed: dict[str, Any] = _redis_parse_url(url)  # type: ignore[no-untyped-call]
    return parsed


CREDENTIAL_FORMS = {
    "user and password": f"redis://app:{SECRET}@cache.example:6379/0",
    "password only": f"redis://:{SECRET}@cache.example:6379/0",
    "query password": f"redis://cache.example:6379/0?password={SECRET}",
    "query user and password": f"redis://cache.example/0?username=app&password={SECRET}",
    "tls": f"rediss://app:{SECRET}@cache.example:6380/1",
    "percent-encoded slash": f"redis://:{SECRET}%2Fx@cache.example:6379/0",
    "unencoded at sign": f"redis://app:{SECRET}@x@cache.example:6379/0",
    "unix socket": f"unix://:{SECRET}@/var/run/redis.sock?db=2",
    "unix query password": f"unix:///var/run/redis.sock?password={SECRET}",
}


@pytest.mark.parametrize("url", CREDENTIAL_FORMS.values(), ids=CREDENTIAL_FORMS.keys())
def test_every_credential_form_is_masked_in_the_redacted_form_and_reprs(url: str) -> None:
    parsed = parse_redis_url(url)
    assert parsed.password is not None
    assert parsed.password.startswith(SECRET)
    tier = RedisTier(url)
    for text in (parsed.redacted, repr(parsed), repr(tier), str(tier.url)):
        assert SECRET not in text
    assert "***@" in parsed.redacted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://cache.example:6380/2", "redis://cache.example:6380/2"),
        ("redis://cache.example", "redis://cache.example:6379"),
        ("rediss://app:pw@cache.example/0", "rediss://***@cache.example:6379/0"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        ("unix:///tmp/redis.sock?db=3", "unix:///tmp/redis.sock?db=3"),
        (
            "redis://cache.example/0?socket_timeout=0.5&client_name=app",
            "redis://cache.example:6379/0",
        ),
    ],
)
def test_the_redacted_form_shows_where_the_tier_connects(url: str, expected: str) -> None:
    assert parse_redis_url(url).redacted == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache.example:6380/2",
        "redis://app:p%40ss@cache.example:6379/0",
        "redis://:p@ss@cache.example:6379/0",
        "rediss://app:pw@10.0.0.1:6379/0?ssl_cert_reqs=none&socket_timeout=0.5",
        "redis://cache.example/0?password=a%26b&username=u",
        "redis://[fe80::1]:7000/0",
        "unix://:pw@/tmp/redis.sock?db=4",
        "redis://cache.example/?db=5&health_check_interval=10&protocol=3",
    ],
)
def test_accepted_urls_mean_what_redis_py_makes_of_them(url: str) -> None:
    ours = parse_redis_url(url).connection_kwargs()
    theirs = redis_parse_url(url)
    theirs.pop("connection_class", None)
    if "path" not in theirs:  # redis-py leaves the defaults to the connection
        theirs.setdefault("host", "localhost")
        theirs.setdefault("port", 6379)
    assert ours == theirs


MALFORMED = {
    "port not a number": ("redis://cache.example:63a9/0", "port"),
    "port out of range": ("redis://cache.example:70000/0", "port"),
    "port zero": ("redis://cache.example:0/0", "port"),
    "IPv6 without closing bracket": ("redis://[::1:6379/0", "IPv6"),
    "bracketed host not IPv6": ("redis://[cache]:6379/0", "IPv6"),
    "IPv6 outside brackets": ("redis://::1:6379/0", "IPv6"),
    "socket_timeout not a number": ("redis://cache.example/0?socket_timeout=abc", "socket_timeout"),
    "socket_timeout negative": ("redis://cache.example/0?socket_timeout=-1", "socket_timeout"),
    "socket_keepalive not a flag": (
        "redis://cache.example/0?socket_keepalive=maybe",
        "socket_keepalive",
    ),
    "db not a number": ("redis://cache.example/zero", "database"),
    "db twice": ("redis://cache.example/0?db=1", "database twice"),
    "unknown option": ("redis://cache.example/0?decode_responses=true", "query option (#1)"),
    "option without value": ("redis://cache.example/0?client_name=", "no value"),
    "option twice": ("redis://cache.example/0?db=1&db=2", "twice"),
    "query not pairs": ("redis://cache.example/0?oops", "name=value"),
    "TLS option without TLS": ("redis://cache.example/0?ssl_cert_reqs=none", "rediss://"),
    "fragment": ("redis://cache.example/0#x", "fragment"),
    "host with a space": ("redis://cache example/0", "host name"),
    "unix without path": ("unix://", "socket path"),
    "unix with a host": ("unix://cache.example/tmp/redis.sock", "unix:///path"),
    "password twice": ("redis://:a@cache.example/0?password=b", "password twice"),
    "no scheme": ("cache.example:6379", "redis://"),
    "other scheme": ("http://cache.example:6379", "redis://"),
    "upper-case scheme": ("REDIS://cache.example:6379", "redis://"),
}


@pytest.mark.parametrize(("url", "part"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_url_raises_naming_the_setting_and_the_part(url: str, part: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_redis_url(url, "STRATACACHE_REDIS_URL")
    message = str(raised.value)
    assert message.startswith("STRATACACHE_REDIS_URL ")
    assert part in message


UNENCODED = {
    "slash in the password": f"redis://app:{SECRET}/tail@cache.example:6379/0",
    "slash, password only": f"redis://:{SECRET}/tail@cache.example:6379/0",
    "digits then slash": "redis://:6380/99SECRET@cache.example/0",
    "question mark": f"redis://:{SECRET}?tail@cache.example:6379/0",
    "hash": f"redis://:{SECRET}#tail@cache.example:6379/0",
    "ampersand in a query password": f"redis://cache.example/0?password={SECRET}&tail",
    "ampersand and equals": f"redis://cache.example/0?password=a&{SECRET}=b",
    "unix slash": f"unix://:{SECRET}/tail@/tmp/redis.sock",
}


@pytest.mark.parametrize("url", UNENCODED.values(), ids=UNENCODED.keys())
def test_a_password_with_unencoded_delimiters_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisTier(url)
    message = str(raised.value)
    assert message.startswith("url ")
    for fragment in (SECRET, "tail", "99SECRET", "6380"):
        assert fragment not in message


def test_redis_py_would_have_quoted_the_password_where_we_refuse() -> None:
    # The leak this module exists to prevent: redis-py reads "app:Pw-7Kq-SECRET" as
    # host:port and its error prints the "port".
    with pytest.raises(ValueError, match=SECRET):
        redis_parse_url(UNENCODED["slash in the password"])


_WEIRD = st.text(alphabet="QX/?#@:&=%[]+ ", min_size=1, max_size=12)


@given(password=_WEIRD.map(lambda s: "Q" + s), form=st.sampled_from(range(5)))
def test_no_password_reaches_a_message_or_a_redacted_form(password: str, form: int) -> None:
    # Upper-case Q and X appear in no message and in no host here, so finding one in
    # the output means a piece of the password got out.
    url = [
        f"redis://:{password}@cache.example:6379/0",
        f"redis://app:{password}@cache.example/0",
        f"rediss://cache.example/0?password={password}",
        f"unix://:{password}@/tmp/redis.sock",
        f"redis://[::1]:6379/0?username={password}",
    ][form]
    try:
        parsed = parse_redis_url(url)
    except ConfigurationError as exc:
        shown = str(exc)
    else:
        shown = parsed.redacted + repr(parsed)
        theirs: dict[str, Any] | None
        try:
            theirs = redis_parse_url(url)
        except ValueError:
            theirs = None
        if theirs is not None and "path" not in theirs:
            # Where both accept a URL, both connect to the same place as the same user.
            assert parsed.host == theirs.get("host")
            assert (parsed.port or 6379) == theirs.get("port", 6379)
            assert parsed.password == theirs.get("password")
            assert parsed.username == theirs.get("username")
    assert "Q" not in shown
    assert "X" not in shown
