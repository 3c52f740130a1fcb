"""``stratacache-report``: hit rates and a monthly cost estimate from EMF log lines.

Reads the EMF lines stratacache publishes, from files or standard input, one
line at a time, in any of the shapes they come in: as printed (``make demo``
puts a step number before each), as CloudWatch Logs exports them (JSON with a
``message`` field, one event a line; ``aws logs filter-log-events``' answer,
compact or indented; ``timestamp<TAB>message`` lines). Lines that are not EMF
(text, garbage, truncated or malformed JSON, invalid UTF-8, impossible counts)
are skipped and counted, never fatal. It prints, per function (the
``function_name`` dimension, else the service) and tier: hits, misses, errors
and hit rate; the origin calls saved; and the monthly cost of the tiers
against calling the origin every time, at the request prices given. ``--png
PATH`` also draws the report (needs the ``report`` extra: matplotlib).

Example:
    $ make demo | stratacache-report --monthly-requests 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from stratacache.metrics import BREAKER_OPENED, ERROR, FUNCTION_NAME, HIT, MISS, ORIGIN, ORIGIN_CALL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HOURS_PER_MONTH: Final = 730.0
"""The month AWS prices by."""
MIN_EXTRAPOLATION_SECONDS: Final = 60.0
"""A log shorter than this is not extrapolated to a month: ``--monthly-requests`` is needed."""
MAX_LINE_BYTES: Final = 32 * 1024 * 1024
"""Longer lines are skipped without being held in memory (an ``aws logs`` page is ~1 MB)."""
MAX_SERIES: Final = 1000
"""At most this many (function, tier) pairs are summed; lines of further pairs are counted."""
MAX_NAME: Final = 256
"""Longest function or tier name read; a longer one makes its line malformed."""
MAX_COUNT: Final = 2**53
"""Largest count a metric value may hold (a float's exact integers)."""
MAX_VALUES: Final = 100
"""Most values one EMF metric may carry (CloudWatch's limit)."""
TIMELINE_BUCKETS: Final = 2048
"""Time buckets kept per log for the chart; their width doubles to stay under it."""
_LAST_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time datetime holds
_NESTING: Final = 2  # a CloudWatch event's message, which may hold another event's JSON
_METRICS: Final = (HIT, MISS, ERROR, BREAKER_OPENED, ORIGIN_CALL)
_SCAN: Final = json.JSONDecoder().raw_decode
_MESSAGE_FIELD: Final = re.compile(r'"message"\s*:\s*(?=")')
"""A line of an indented ``aws logs`` answer that holds a log event."""


@dataclass(frozen=True)
class Prices:
    """Request prices in USD; the defaults are AWS's us-east-1 list prices (2025).

    Example:
        >>> Prices(origin_call=0.002).origin_call
        0.002
    """

    ecpu_per_million: float = 0.0023
    """ElastiCache Serverless for Valkey, per million ECPUs (one per request of up to 1 KB)."""
    storage_gb_hour: float = 0.084
    """ElastiCache Serverless for Valkey data stored, per GB-hour."""
    storage_gb: float = 0.1
    """GB stored in ElastiCache; 0.1 is the least Valkey bills."""
    read_per_million: float = 0.125
    """DynamoDB on-demand, per million read request units."""
    write_per_million: float = 0.625
    """DynamoDB on-demand, per million write request units."""
    origin_call: float = 0.0001
    """What one call of the origin costs (an API's fee, a database's share): set yours."""
    value_kb: float = 1.0
    """Average size of a cached entry, in KB."""
    consistent_read: bool = False
    """DynamoDBTier(consistent_read=True): a read costs twice as much."""


@dataclass
class Counts:
    """Summed counts of one tier of one function."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    breaker_opened: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses


@dataclass
class Timeline:
    """Hits and misses per tier and time bucket, in at most ``limit`` buckets.

    Buckets start a millisecond wide; whenever there are more than ``limit``,
    their width doubles and neighbours merge, so memory stays bounded whatever
    the log's length and the work per line stays constant (amortized).

    Example:
        >>> timeline = Timeline(limit=2)
        >>> for second in (0, 1, 2):
        ...     timeline.add(second, "L1", 1, 0)
        >>> timeline.width, sorted(timeline.buckets.values())
        (1.024, [[1, 0], [2, 0]])
    """

    width: float = 0.001
    limit: int = TIMELINE_BUCKETS
    buckets: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def add(self, seconds: float, tier: str, hits: int, misses: int) -> None:
        total = self.buckets.setdefault((tier, int(seconds // self.width)), [0, 0])
        total[0] += hits
        total[1] += misses
        while len(self.buckets) > self.limit:
            self.width *= 2
            merged: dict[tuple[str, int], list[int]] = {}
            for (name, index), (h, m) in self.buckets.items():
                into = merged.setdefault((name, index // 2), [0, 0])
                into[0] += h
                into[1] += m
            self.buckets = merged


@dataclass
class Log:
    """What the EMF lines say, summed per (function, tier), and what was skipped."""

    tiers: dict[tuple[str, str], Counts] = field(default_factory=dict)
    origin_calls: dict[str, int] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)
    lines: int = 0
    """stratacache EMF documents read."""
    other: int = 0
    """EMF documents of other metrics (no ``tier`` dimension or no cache metric)."""
    skipped: int = 0
    """Lines holding no EMF document, or a malformed one (bad JSON, UTF-8, counts, names)."""
    overflow: int = 0
    """stratacache lines of (function, tier) pairs past :data:`MAX_SERIES`."""
    first: float | None = None
    last: float | None = None

    @property
    def span(self) -> float:
        """Seconds between the first and the last line."""
        return 0.0 if self.first is None or self.last is None else self.last - self.first

    def functions(self) -> list[str]:
        return sorted({function for function, _ in self.tiers} | set(self.origin_calls))

    def tier_names(self, function: str | None = None) -> list[str]:
        """Tier names fastest first (``L1``, ``L2``, ... then others by name)."""
        names = {tier for f, tier in self.tiers if function is None or f == function}
        return sorted(names, key=tier_order)


def tier_order(name: str) -> tuple[int, int, str]:
    match = re.fullmatch(r"L(\d{1,9})", name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


# ------------------------------------------------------------------ reading
#
# Each line costs one pass: one search for "{", one JSON scan from there (the C scanner,
# which gives up at its recursion limit on deep nesting), and at most _NESTING more for
# the message of a CloudWatch event. Nothing is retried from later positions, so a
# megabyte of garbage is read once, not once per brace.


def read_lines(lines: Iterable[bytes | str], log: Log | None = None) -> Log:
    """Add one input's lines to ``log`` (a new one by default) and return it.

    Example:
        >>> line = ('{"_aws": {"Timestamp": 0}, "tier": "L1", "service": "quotes",'
        ...         ' "CacheHit": [3.0], "CacheMiss": [1.0]}')
        >>> log = read_lines([line, "Infinity", '{"_aws": null, "tier": "L1"}'])
        >>> log.tiers[("quotes", "L1")].hits, log.lines, log.skipped
        (3, 1, 2)
    """
    log = Log() if log is None else log
    indented: bool | None = None
    for raw in lines:
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                log.skipped += 1
                continue
        else:
            text = raw
        text = text.strip()
        if not text:
            continue
        if indented is None:  # an indented JSON document: only its "message" lines are events
            text = text.lstrip("\ufeff")  # a byte order mark, as some editors save files
            indented = text in ("{", "[")
        if indented and not _MESSAGE_FIELD.match(text):
            continue
        documents = _documents_on(text, 0)
        if not documents:
            log.skipped += 1
        for document in documents:
            _add(log, document)
    return log


def read_text(text: str) -> Log:
    """:func:`read_lines` over a string's lines."""
    return read_lines(text.splitlines())


def stream_lines(stream: BinaryIO, log: Log) -> Iterator[bytes]:
    """``stream``'s lines; one over :data:`MAX_LINE_BYTES` is counted skipped and never held."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES:
            yield line
            continue
        log.skipped += 1
        while line and not line.endswith(b"\n"):
            line = stream.readline(1 << 20)


def _documents_on(text: str, depth: int) -> list[dict[str, Any]]:
    """The EMF candidates on one line (stripped): at most one JSON value is scanned."""
    match = _MESSAGE_FIELD.match(text)
    if match:  # `"message": "...",` of an indented aws logs answer
        message = _scan(text, match.end())
        if isinstance(message, str) and depth < _NESTING:
            return _documents_on(message.strip(), depth + 1)
        return []
    start = 0 if text.startswith("[") else text.find("{")
    return [] if start < 0 else _unwrap(_scan(text, start), depth)


def _scan(text: str, start: int) -> object:
    try:
        return _SCAN(text, start)[0]
    except (ValueError, RecursionError):  # not JSON, truncated, or nested past the limit
        return None


def _unwrap(found: object, depth: int) -> list[dict[str, Any]]:
    if isinstance(found, dict):
        if "_aws" in found:
            return [found]
        events = found.get("events")  # an aws logs answer on one line
        if not isinstance(events, list):
            return _message_of(found, depth)
    elif isinstance(found, list):  # a list of events
        events = found
    else:
        return []
    documents: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, dict):
            documents += [event] if "_aws" in event else _message_of(event, depth)
    return documents


def _message_of(event: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    message = event.get("message")
    if isinstance(message, str) and depth < _NESTING:
        return _documents_on(message.strip(), depth + 1)
    return []


def _is_count(value: object) -> bool:
    return (
        type(value) in (int, float) and 0 <= value <= MAX_COUNT  # type: ignore[operator]
    )  # NaN compares false; Infinity and 1e400 are past MAX_COUNT; True is not a count


def _count(raw: object) -> int | None:
    """An EMF metric's total, 0 when absent, ``None`` when it is not a count."""
    if raw is None:
        return 0
    values = raw if isinstance(raw, list) and len(raw) <= MAX_VALUES else [raw]
    if all(_is_count(value) for value in values):
        return int(sum(values))
    return None


def _counts(doc: dict[str, Any]) -> list[int] | None:
    """Hits, misses, errors, breaker openings and origin calls; ``None`` if one is not a count."""
    counts = []
    for metric in _METRICS:
        count = _count(doc.get(metric))
        if count is None:
            return None
        counts.append(count)
    return counts


def _name(value: object) -> str | None:
    """A dimension value fit to print: a short printable string, else ``None``."""
    if isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable():
        return value
    return None


def _add(log: Log, doc: dict[str, Any]) -> None:
    """Count one EMF document: stratacache's, another's, or malformed (skipped)."""
    meta = doc.get("_aws")
    stamp = meta.get("Timestamp") if isinstance(meta, dict) else None
    if not (type(stamp) in (int, float) and 0 <= stamp <= _LAST_MS):  # type: ignore[operator]
        log.skipped += 1  # EMF requires _aws.Timestamp, in epoch milliseconds
        return
    if "tier" not in doc or not any(metric in doc for metric in _METRICS):
        log.other += 1
        return
    tier = _name(doc["tier"])
    raw_function = doc.get(FUNCTION_NAME) or doc.get("service") or "-"
    function = _name(raw_function)
    counts = _counts(doc)
    if tier is None or function is None or counts is None:
        log.skipped += 1
        return
    hits, misses, errors, opened, calls = counts
    known = function in log.origin_calls if tier == ORIGIN else (function, tier) in log.tiers
    if not known and len(log.tiers) + len(log.origin_calls) >= MAX_SERIES:
        log.overflow += 1
        return
    log.lines += 1
    seconds = stamp / 1000  # type: ignore[operator]
    log.first = seconds if log.first is None else min(log.first, seconds)
    log.last = seconds if log.last is None else max(log.last, seconds)
    if tier == ORIGIN:
        log.origin_calls[function] = log.origin_calls.get(function, 0) + calls
        return
    summed = log.tiers.setdefault((function, tier), Counts())
    summed.hits += hits
    summed.misses += misses
    summed.errors += errors
    summed.breaker_opened += opened
    log.timeline.add(seconds, tier, hits, misses)


# ------------------------------------------------------------------ arithmetic


@dataclass(frozen=True)
class Summary:
    """Lookups, hits and origin calls of one function."""

    function: str
    lookups: int
    saved: int
    """Lookups some tier answered: each is an origin call saved."""
    origin_calls: int
    counted: bool
    """Whether the origin calls were counted (``CacheOriginCall``) or estimated."""


def summarize(log: Log, function: str) -> Summary:
    """A function's lookups (its fastest tier's hits and misses), hits and origin calls."""
    names = log.tier_names(function)
    lookups = log.tiers[(function, names[0])].lookups if names else 0
    saved = sum(log.tiers[(function, name)].hits for name in names)
    if function in log.origin_calls:
        return Summary(function, lookups, saved, log.origin_calls[function], True)
    return Summary(function, lookups, saved, max(lookups - saved, 0), False)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads it in.

    Example:
        >>> duration(0.011), duration(90), duration(7200), duration(3 * 86400)
        ('11 ms', '1.5 min', '2.0 h', '3.0 days')
    """
    if seconds < 1:
        return f"{seconds * 1000:,.0f} ms"
    if seconds < 60:
        return f"{seconds:,.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:,.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.1f} days"


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def time_range(log: Log) -> str:
    """The log's first and last timestamps, in UTC, and its span."""
    if log.first is None or log.last is None:
        return "no timestamps"
    start, end = _utc(log.first), _utc(log.last)
    until = end.strftime("%H:%M:%S" if start.date() == end.date() else "%Y-%m-%d %H:%M:%S")
    return f"{start:%Y-%m-%d %H:%M:%S} to {until} UTC ({duration(log.span)})"


@dataclass(frozen=True)
class Cost:
    """A monthly estimate: (item, quantity, unit, USD) rows, the total, and without a cache."""

    monthly_lookups: float
    how: str
    rows: list[tuple[str, float, str, float]]
    with_cache: float
    origin_only: float
    origin_price: str = ""
    """Where the price of an origin call comes from, as the report states it."""


DEFAULT_ORIGIN_PRICE: Final = "the default placeholder: set yours with --origin-cost"


def estimate(
    log: Log,
    prices: Prices,
    monthly_lookups: float | None = None,
    redis_tier: str = "L2",
    dynamodb_tier: str = "L3",
    origin_price: str = DEFAULT_ORIGIN_PRICE,
) -> Cost:
    """The month's cost of the tiers and the remaining origin calls, against the origin alone.

    Per function, reads of a tier are its hits and misses; writes are the
    function's origin calls plus the hits of its slower tiers (promotions).
    Lease locks, generation reads and DynamoDB storage are left out. Without
    ``monthly_lookups`` the log's volume is extrapolated from its time span,
    which must be at least :data:`MIN_EXTRAPOLATION_SECONDS` (``ValueError``
    otherwise: a month guessed from milliseconds would be fiction).
    """
    summaries = {function: summarize(log, function) for function in log.functions()}
    lookups = sum(s.lookups for s in summaries.values())
    origin_calls = sum(s.origin_calls for s in summaries.values())
    if monthly_lookups is not None:
        how = "given"
    elif log.span >= MIN_EXTRAPOLATION_SECONDS:
        monthly_lookups = lookups * HOURS_PER_MONTH * 3600 / log.span
        how = f"extrapolated from {lookups:,} in {duration(log.span)} of log"
    else:
        raise ValueError(
            f"the log spans {duration(log.span)}, under a minute, too short to extrapolate "
            "a month from: give the monthly volume with --monthly-requests"
        )
    scale = monthly_lookups / lookups if lookups else 0.0
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    for function, summary in summaries.items():
        chain = log.tier_names(function)
        for position, name in enumerate(chain):
            promoted = sum(log.tiers[(function, slower)].hits for slower in chain[position + 1 :])
            reads[name] = reads.get(name, 0) + log.tiers[(function, name)].lookups
            writes[name] = writes.get(name, 0) + summary.origin_calls + promoted
    rows: list[tuple[str, float, str, float]] = []
    for name in log.tier_names():
        reads_month, writes_month = reads[name] * scale, writes[name] * scale
        if name == redis_tier:
            ecpus = (reads_month + writes_month) * max(1.0, prices.value_kb)
            rows.append(
                (f"{name} ElastiCache ECPUs", ecpus, "", ecpus * prices.ecpu_per_million / 1e6)
            )
            gb_hours = prices.storage_gb * HOURS_PER_MONTH
            rows.append(
                (f"{name} ElastiCache storage", gb_hours, "GB-h", gb_hours * prices.storage_gb_hour)
            )
        elif name == dynamodb_tier:
            per_read = math.ceil(prices.value_kb / 4) * (1.0 if prices.consistent_read else 0.5)
            units = reads_month * per_read
            rows.append(
                (f"{name} DynamoDB reads", units, "RRU", units * prices.read_per_million / 1e6)
            )
            units = writes_month * math.ceil(prices.value_kb)
            rows.append(
                (f"{name} DynamoDB writes", units, "WRU", units * prices.write_per_million / 1e6)
            )
    origin_month = origin_calls * scale
    rows.append(("origin calls", origin_month, "", origin_month * prices.origin_call))
    return Cost(
        monthly_lookups=monthly_lookups,
        how=how,
        rows=rows,
        with_cache=sum(row[3] for row in rows),
        origin_only=monthly_lookups * prices.origin_call,
        origin_price=f"{prices.origin_call:g} USD a call, {origin_price}",
    )


# ------------------------------------------------------------------ text


def _lines(count: int, what: str = "line") -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def skipped_note(log: Log) -> str:
    """What was not counted, in words; empty when every line was stratacache's."""
    parts = []
    if log.skipped:
        verb = "is" if log.skipped == 1 else "are"
        parts.append(f"skipped {_lines(log.skipped)} that {verb} not EMF")
    if log.other:
        parts.append(f"{_lines(log.other, 'EMF line')} of other metrics")
    if log.overflow:
        parts.append(f"{_lines(log.overflow)} past the first {MAX_SERIES:,} function/tier pairs")
    return "; ".join(parts)


def render(log: Log, cost: Cost | None) -> str:
    """The report as text: the tier table, the origin table and the cost estimate."""
    functions = log.functions()
    width = max([len("function"), *(len(f) for f in functions)])
    out = [
        f"stratacache report: {log.lines:,} EMF lines, {len(functions)} function(s), "
        f"{time_range(log)}",
    ]
    if note := skipped_note(log):
        out.append(note)
    out += [
        "",
        f"{'function':<{width}}  {'tier':<6} {'hits':>8} {'misses':>8} {'errors':>7} "
        f"{'hit rate':>8}",
    ]
    for function in functions:
        for name in log.tier_names(function):
            c = log.tiers[(function, name)]
            out.append(
                f"{function:<{width}}  {name:<6} {c.hits:>8,} {c.misses:>8,} {c.errors:>7,} "
                f"{_pct(c.hits, c.lookups):>8}"
            )
    out += [
        "",
        f"{'function':<{width}}  {'lookups':>8} {'origin calls':>13} {'calls saved':>12} "
        f"{'saved %':>8}",
    ]
    estimated = False
    for function in functions:
        s = summarize(log, function)
        estimated = estimated or not s.counted
        mark = "" if s.counted else "*"
        out.append(
            f"{function:<{width}}  {s.lookups:>8,} {f'{s.origin_calls:,}{mark}':>13} "
            f"{s.saved:>12,} {_pct(s.saved, s.lookups):>8}"
        )
    if estimated:
        out.append("* estimated as lookups minus hits: the log has no CacheOriginCall line")
    opened = sum(c.breaker_opened for c in log.tiers.values())
    if opened:
        out.append(f"circuit breakers opened: {opened:,}")
    if cost is not None:
        out += [
            "",
            f"monthly estimate for {cost.monthly_lookups:,.0f} lookups ({cost.how})",
            f"{'item':<26} {'quantity':>20} {'USD':>12}",
        ]
        for item, quantity, unit, usd in cost.rows:
            out.append(f"{item:<26} {quantity:>15,.0f} {unit:<4} {usd:>12,.2f}")
        saving = cost.origin_only - cost.with_cache
        out += [
            f"{'with the cache':<26} {'':>20} {cost.with_cache:>12,.2f}",
            f"{'origin every time':<26} {cost.monthly_lookups:>15,.0f} {'':<4} "
            f"{cost.origin_only:>12,.2f}",
            f"{'saving':<26} {_pct(saving, cost.origin_only):>15} {'':<4} {saving:>12,.2f}",
            f"origin calls priced at {cost.origin_price}",
        ]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ chart

MIN_TIMELINE_SECONDS: Final = 60.0
"""A log shorter than this gets no hit-rate-over-time panel: its buckets would be noise."""
MAX_BARS: Final = 12
"""Most (function, tier) bars drawn; the busiest are shown and the title says so."""
INSTALL_HINT: Final = "--png needs matplotlib: pip install 'stratacache[report]'"


def hit_rate_series(log: Log, buckets: int = 20) -> dict[str, tuple[list[float], list[float]]]:
    """Per tier: (seconds since the first line, hit rate in %) per time bucket with lookups."""
    if log.first is None:
        return {}
    width = log.span / buckets if log.span > 0 else 1.0
    step = log.timeline.width
    sums: dict[tuple[str, int], list[int]] = {}
    for (tier, index), (hits, misses) in log.timeline.buckets.items():
        middle = (index + 0.5) * step - log.first
        slot = min(max(int(middle / width), 0), buckets - 1)
        total = sums.setdefault((tier, slot), [0, 0])
        total[0] += hits
        total[1] += misses
    series: dict[str, tuple[list[float], list[float]]] = {}
    for (tier, slot), (hits, misses) in sorted(sums.items()):
        if hits + misses:
            xs, ys = series.setdefault(tier, ([], []))
            xs.append((slot + 0.5) * width)
            ys.append(100 * hits / (hits + misses))
    return dict(sorted(series.items(), key=lambda item: tier_order(item[0])))


def chart(log: Log, cost: Cost | None, source: str = "", note: str = "") -> Figure:
    """A matplotlib figure: hit rate per tier, over time (logs of a minute or more), and cost.

    ``source`` names the input in the title; ``note`` says why there is no cost
    estimate when ``cost`` is ``None``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on Lambda or CI
    from matplotlib.figure import Figure

    series = hit_rate_series(log) if log.span >= MIN_TIMELINE_SECONDS else {}
    figure = Figure(figsize=(16 if series else 12, 5.6), layout="constrained")
    axes = list(
        figure.subplots(1, 3 if series else 2, width_ratios=[1, 1, 1.3][-3 if series else -2 :])
    )
    title = f"stratacache report: {source or 'EMF lines'}, {time_range(log)}"
    if skipped := skipped_note(log):
        title += f"\n{skipped}"
    figure.suptitle(title)
    _tier_panel(axes[0], log)
    if series:
        _timeline_panel(axes[1], log, series)
    elif log.span < MIN_TIMELINE_SECONDS:
        axes[0].set_xlabel(
            f"no hit rate over time: the log spans {duration(log.span)}, under a minute"
        )
    _cost_panel(axes[-1], log, cost, note)
    return figure


def _colours(log: Log) -> dict[str, str]:
    """One colour per tier name, the same in every panel."""
    return {name: f"C{index % 10}" for index, name in enumerate(log.tier_names())}


def _tier_panel(ax: Axes, log: Log) -> None:
    pairs = sorted(log.tiers, key=lambda pair: -log.tiers[pair].lookups)[:MAX_BARS]
    pairs.sort(key=lambda pair: (pair[0], tier_order(pair[1])))
    functions = {function for function, _ in log.tiers}
    labels = [tier if len(functions) == 1 else f"{function}\n{tier}" for function, tier in pairs]
    counts = [log.tiers[pair] for pair in pairs]
    rates = [100 * c.hits / c.lookups if c.lookups else 0.0 for c in counts]
    colours = _colours(log)
    bars = ax.bar(labels, rates, color=[colours[tier] for _, tier in pairs])
    ax.bar_label(
        bars,
        labels=[
            f"{rate:.1f}%\n{c.hits:,} of {c.lookups:,}"
            for rate, c in zip(rates, counts, strict=True)
        ],
        padding=2,
    )
    ax.set_ylim(0, 118)
    ax.set_ylabel("hits / (hits + misses), %")
    shown = "" if len(pairs) == len(log.tiers) else f" (busiest {len(pairs)} of {len(log.tiers)})"
    only = f": {next(iter(functions))}" if len(functions) == 1 else ""
    ax.set_title(f"Hit rate per tier{only}{shown}")


def _timeline_panel(ax: Axes, log: Log, series: dict[str, tuple[list[float], list[float]]]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    assert log.first is not None
    colours = _colours(log)
    for tier, (xs, ys) in series.items():
        times: Any = [_utc(log.first + x) for x in xs]  # matplotlib's stubs omit datetimes
        ax.plot(times, ys, marker="o", label=tier, color=colours[tier])
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        ConciseDateFormatter(locator, tz=dt.timezone.utc)  # type: ignore[no-untyped-call]
    )
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("hit rate, %")
    ax.set_ylim(-5, 105)
    ax.set_title("Hit rate over time")
    ax.legend()


def usd_label(usd: float) -> str:
    """Dollars as a bar's label: cents, or two significant digits below a cent.

    Example:
        >>> usd_label(1234.5), usd_label(0.04), usd_label(0.00049), usd_label(0)
        ('$1,234.50', '$0.04', '$0.00049', '$0')
    """
    if usd == 0:
        return "$0"
    return f"${usd:,.2f}" if usd >= 0.01 else f"${usd:.2g}"


def _cost_panel(ax: Axes, log: Log, cost: Cost | None, note: str) -> None:
    if cost is None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no cost estimate:\n{note}", ha="center", va="center", wrap=True)
        return
    items = [(item, usd) for item, _, _, usd in cost.rows]
    items += [("with the cache (total)", cost.with_cache), ("origin every time", cost.origin_only)]
    positive = [usd for _, usd in items if usd > 0]
    floor = min(positive) / 3 if positive else 0.01  # a bar for $0.00 on a log scale
    by_tier = _colours(log)
    colours = [by_tier.get(item.split(" ", 1)[0], "C3") for item, _ in items[:-2]]
    colours += ["C4", "C7"]  # the total with the cache, the origin alone
    bars = ax.barh(
        [item for item, _ in items], [max(usd, floor) for _, usd in items], color=colours
    )
    ax.bar_label(bars, labels=[usd_label(usd) for _, usd in items], padding=3)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, max(max(positive, default=1.0), floor) * 30)  # room for the labels
    ax.set_title(f"Monthly cost, {cost.monthly_lookups:,.0f} lookups ({cost.how})", wrap=True)
    ax.set_xlabel("USD per month, log scale")
    ax.figure.supxlabel(f"origin calls priced at {cost.origin_price}", fontsize="medium")


def draw(log: Log, cost: Cost | None, path: Path, source: str = "", note: str = "") -> None:
    """Write :func:`chart` as a PNG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chart(log, cost, source, note).savefig(path, dpi=100)


# ------------------------------------------------------------------ command line

PROG: Final = "stratacache-report"


def _amount(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite amount of 0 or more")
    return value


def _volume(text: str) -> float:
    value = _amount(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the monthly volume must be more than 0")
    return value


def _parser() -> argparse.ArgumentParser:
    defaults = Prices()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Hit rates, origin calls saved and a monthly cost estimate from EMF lines.",
    )
    parser.add_argument("files", nargs="*", help="log files; none or '-' reads standard input")
    parser.add_argument("--png", type=Path, help="also draw the report into this PNG file")
    parser.add_argument(
        "--monthly-requests",
        type=_volume,
        help="lookups per month (default: extrapolated from a log of a minute or more)",
    )
    parser.add_argument(
        "--ecpu-price",
        type=_amount,
        default=defaults.ecpu_per_million,
        help="USD per million ElastiCache Serverless ECPUs (%(default)s, Valkey)",
    )
    parser.add_argument(
        "--storage-price",
        type=_amount,
        default=defaults.storage_gb_hour,
        help="USD per GB-hour stored in ElastiCache Serverless (%(default)s, Valkey)",
    )
    parser.add_argument(
        "--storage-gb",
        type=_amount,
        default=defaults.storage_gb,
        help="GB stored in ElastiCache (%(default)s: the least Valkey bills)",
    )
    parser.add_argument(
        "--read-price",
        type=_amount,
        default=defaults.read_per_million,
        help="USD per million DynamoDB on-demand read request units (%(default)s)",
    )
    parser.add_argument(
        "--write-price",
        type=_amount,
        default=defaults.write_per_million,
        help="USD per million DynamoDB on-demand write request units (%(default)s)",
    )
    parser.add_argument(
        "--origin-cost",
        type=_amount,
        help=f"USD per call of the origin ({defaults.origin_call}, a placeholder: set yours)",
    )
    parser.add_argument(
        "--value-kb", type=_amount, default=defaults.value_kb, help="average entry size in KB"
    )
    parser.add_argument(
        "--consistent-read", action="store_true", help="the DynamoDB tier reads consistently"
    )
    parser.add_argument("--redis-tier", default="L2", help="tier priced as ElastiCache (L2)")
    parser.add_argument("--dynamodb-tier", default="L3", help="tier priced as DynamoDB (L3)")
    return parser


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def _source(files: Sequence[str]) -> str:
    names = ["standard input" if name == "-" else name for name in files or ["-"]]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report: 0 on success, 2 on an input it cannot use (said in one line on stderr)."""
    args = _parser().parse_args(argv)
    if args.png is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _fail(INSTALL_HINT)
    log = Log()
    for name in args.files or ["-"]:
        try:
            if name == "-":
                read_lines(stream_lines(sys.stdin.buffer, log), log)
            else:
                with open(name, "rb") as stream:
                    read_lines(stream_lines(stream, log), log)
        except OSError as exc:
            return _fail(f"cannot read {name}: {exc.strerror or exc}")
    if not log.lines:
        skipped = skipped_note(log)
        return _fail(
            "no stratacache EMF lines (dimension tier) in the input"
            + (f" ({skipped})" if skipped else "")
        )
    given = args.origin_cost is not None
    prices = Prices(
        ecpu_per_million=args.ecpu_price,
        storage_gb_hour=args.storage_price,
        storage_gb=args.storage_gb,
        read_per_million=args.read_price,
        write_per_million=args.write_price,
        origin_call=args.origin_cost if given else Prices.origin_call,
        value_kb=args.value_kb,
        consistent_read=args.consistent_read,
    )
    try:
        cost: Cost | None = estimate(
            log,
            prices,
            args.monthly_requests,
            args.redis_tier,
            args.dynamodb_tier,
            "given with --origin-cost" if given else DEFAULT_ORIGIN_PRICE,
        )
    except ValueError as exc:
        cost = None
        note = str(exc)
    else:
        note = ""
    sys.stdout.write(render(log, cost))
    if note:
        sys.stdout.write(f"no cost estimate: {note}\n")
    if args.png is not None:
        try:
            draw(log, cost, args.png, _source(args.files), note)
        except OSError as exc:
            return _fail(f"cannot write {args.png}: {exc.strerror or exc}")
        sys.stdout.write(f"chart: {args.png}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
