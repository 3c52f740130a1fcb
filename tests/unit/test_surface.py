"""The user's cache shows what the README documents, and no engine verb."""

from __future__ import annotations

from stratacache import MemoryTier, TieredCache, cached

PUBLIC = {
    # reading
    "get", "get_many", "has", "ttl", "get_or_compute", "aget_or_compute",
    # writing
    "set", "set_many", "expire",
    # invalidating
    "delete", "delete_many", "invalidate", "invalidate_all", "clear",
    # operating
    "stats", "health_check", "close",
    # read-only attributes, and the stored form of a key
    "tiers", "namespace", "default_ttl", "freshness", "clock", "full_key",
}  # fmt: skip

ENGINE_VERBS = {
    "acquire", "poll", "give_up", "served", "served_on_error", "reset", "read", "write",
    "read_many", "write_many", "promote", "lease_slot", "lock_slot", "refresh_lock",
    "refresh_unlock", "begin", "check_generation", "lookup_entry", "store", "invalidate_many",
    "refresh_due", "is_stale", "slots", "marks", "flights", "codec", "layout", "generation",
    "recorder", "l1", "counts",
}  # fmt: skip


def public_names(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_a_cache_shows_at_most_25_public_names_all_documented() -> None:
    cache = TieredCache([MemoryTier()], namespace="surface")
    assert public_names(cache) == PUBLIC
    assert len(PUBLIC) <= 25


def test_no_engine_verb_is_a_method_of_the_users_cache() -> None:
    @cached(ttl=60)
    def price(sku: str) -> int:
        return len(sku)

    assert public_names(price.cache) & ENGINE_VERBS == set()
    assert public_names(price.cache) == PUBLIC


def test_the_read_only_attributes_cannot_be_set() -> None:
    cache = TieredCache([MemoryTier()], ttl=60, namespace=("a", "b"))
    assert (cache.namespace, cache.default_ttl, len(cache.tiers)) == ("a:b", 60.0, 1)
    for name in ("tiers", "namespace", "default_ttl", "freshness", "clock"):
        try:
            setattr(cache, name, None)
        except AttributeError:
            continue
        raise AssertionError(f"{name} could be set")


def test_a_tier_declaring_the_old_lock_capability_still_builds_with_a_warning() -> None:
    import pytest

    from stratacache.tiers.base import Capabilities

    with pytest.warns(DeprecationWarning, match="lock"):
        declared = Capabilities(versioned=True, lock=True, counter=True)
    assert declared == Capabilities(versioned=True, counter=True)


def test_the_engines_old_module_names_import_with_a_deprecation_warning() -> None:
    import importlib
    import subprocess
    import sys

    probe = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n    import stratacache.records\nexcept DeprecationWarning as w:\n    print(w)\n"
        "warnings.simplefilter('ignore')\n"
        "from stratacache.singleflight import SingleFlight\n"
        "from stratacache.records import TOMBSTONE_TTL\n"
        "print(SingleFlight().do('k', lambda: TOMBSTONE_TTL))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "stratacache.records moved into the private engine" in out.stdout
    assert out.stdout.splitlines()[-1] == "900.0"
    assert importlib.import_module("stratacache._engine.chain").TOMBSTONE_TTL == 900.0
