"""The decorators' memo of recent calls is bounded by what it pins, not by a count
alone (issue 18): large arguments must not keep megabytes alive."""

from __future__ import annotations

import subprocess
import sys

from stratacache import MemoryTier, cached

_GROWTH = """
import resource, sys
from stratacache import MemoryTier, cached

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

@cached(ttl=300, tier=MemoryTier(maxsize=16))
def size(text):
    return len(text)

for i in range(20):  # allocator, caches and code paths warm before the baseline
    size(str(i).rjust(96 * 1024, "x"))
before = peak_mib()
for i in range(3000):  # 3,000 distinct 96 KB arguments, each made for its call
    assert size(str(i).rjust(96 * 1024, "y")) == 96 * 1024
print(peak_mib() - before)
"""


def test_3000_distinct_96kb_arguments_grow_rss_by_less_than_30_mib() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _GROWTH], capture_output=True, text=True, check=True
    ).stdout
    assert float(out) < 30, f"RSS grew by {float(out):.1f} MiB"


def test_a_large_argument_repeated_is_still_an_l1_hit() -> None:
    calls: list[int] = []

    @cached(ttl=300, tier=MemoryTier(maxsize=16))
    def size(text: str) -> int:
        calls.append(1)
        return len(text)

    big = "z" * (512 * 1024)  # past the memo's budget: keyed again each time, still cached
    assert [size(big) for _ in range(3)] == [len(big)] * 3
    assert len(calls) == 1
    assert size.cache_info().hits == 2
