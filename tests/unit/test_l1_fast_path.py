"""The decorators' L1 fast path: one memo lookup, one dict lookup, and the LRU kept."""

from __future__ import annotations

from stratacache import MemoryTier, cached


def test_the_fast_path_reads_the_plain_dict_of_the_installed_cachetools() -> None:
    tier = MemoryTier()
    assert type(tier.entries) is dict  # not cachetools' Python-level __getitem__
    tier.set("k", "v", ttl=None)
    assert tier.entries["k"][0] == "v"


def test_a_fast_path_hit_keeps_the_entry_recently_used() -> None:
    computed: list[str] = []

    @cached(tier=MemoryTier(maxsize=2))
    def f(x: str) -> str:
        computed.append(x)
        return x

    f("a")
    f("b")
    f("a")  # a hit on the fast path: "a" is now the most recently used
    f("c")  # evicts the least recently used: "b"
    f("a")
    f("b")
    assert computed == ["a", "b", "c", "b"]
