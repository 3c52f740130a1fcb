"""``python -m stratacache.report``: hit rates and a monthly cost estimate from EMF log lines.

Reads the EMF lines stratacache publishes, from files or standard input, in
any of the shapes they come in: as printed (``make demo`` puts a step number
before each), as CloudWatch Logs exports them (JSON with a ``message`` field,
one event a line or ``aws logs filter-log-events``' whole ``{"events": [...]}``
document; ``timestamp<TAB>message`` lines). Lines that are not stratacache's
are skipped. It prints, per function (the ``function_name`` dimension, else
the service) and tier: hits, misses, errors and hit rate; the origin calls
saved; and the monthly cost of the tiers against calling the origin every
time, at the request prices given. ``--png PATH`` also draws the hit rate per
tier over time and the cost comparison (needs the ``report`` extra: matplotlib).

Example:
    $ make demo | python -m stratacache.report --monthly-requests 10000000
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stratacache.metrics import BREAKER_OPENED, ERROR, HIT, MISS, ORIGIN, ORIGIN_CALL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HOURS_PER_MONTH: Final = 730.0
"""The month AWS prices by."""

_DECODER: Final = json.JSONDecoder()


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
class Log:
    """What the EMF lines say, summed per (function, tier)."""

    tiers: dict[tuple[str, str], Counts] = field(default_factory=dict)
    origin_calls: dict[str, int] = field(default_factory=dict)
    points: list[tuple[float, str, int, int]] = field(default_factory=list)
    """(epoch seconds, tier, hits, misses) of each line, for the chart."""
    lines: int = 0
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
    match = re.fullmatch(r"L(\d+)", name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


# ------------------------------------------------------------------ reading


def documents(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``text`` that may be an EMF document, whatever wraps it."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            whole = json.loads(stripped)
        except ValueError:
            pass
        else:  # one JSON document: an `aws logs` answer, or a list of events
            events = whole.get("events") if isinstance(whole, dict) else whole
            if isinstance(events, list):
                for event in events:
                    yield from _unwrap(event)
                return
    for line in text.splitlines():
        yield from _objects_in(line)


def _objects_in(line: str) -> Iterator[dict[str, Any]]:
    start = line.find("{")
    while start != -1:
        try:
            found, end = _DECODER.raw_decode(line, start)
        except ValueError:
            start = line.find("{", start + 1)
            continue
        yield from _unwrap(found)
        start = line.find("{", end)


def _unwrap(found: object) -> Iterator[dict[str, Any]]:
    if not isinstance(found, dict):
        return
    if "_aws" in found:
        yield found
    elif isinstance(found.get("message"), str):  # a CloudWatch Logs event
        yield from _objects_in(found["message"])


def _total(raw: object) -> float:
    if isinstance(raw, list):
        return float(sum(v for v in raw if isinstance(v, int | float)))
    return float(raw) if isinstance(raw, int | float) else 0.0


def read(docs: Iterable[dict[str, Any]]) -> Log:
    """Sum the cache counts of stratacache's EMF documents; other documents are skipped."""
    log = Log()
    for doc in docs:
        tier = doc.get("tier")
        if not isinstance(tier, str) or not any(m in doc for m in (HIT, MISS, ERROR, ORIGIN_CALL)):
            continue
        function = str(doc.get("function_name") or doc.get("service") or "-")
        log.lines += 1
        stamp = doc.get("_aws", {}).get("Timestamp")
        seconds = stamp / 1000 if isinstance(stamp, int | float) else None
        if seconds is not None:
            log.first = seconds if log.first is None else min(log.first, seconds)
            log.last = seconds if log.last is None else max(log.last, seconds)
        if tier == ORIGIN:
            calls = int(_total(doc.get(ORIGIN_CALL)))
            log.origin_calls[function] = log.origin_calls.get(function, 0) + calls
            continue
        counts = log.tiers.setdefault((function, tier), Counts())
        hits, misses = int(_total(doc.get(HIT))), int(_total(doc.get(MISS)))
        counts.hits += hits
        counts.misses += misses
        counts.errors += int(_total(doc.get(ERROR)))
        counts.breaker_opened += int(_total(doc.get(BREAKER_OPENED)))
        if seconds is not None:
            log.points.append((seconds, tier, hits, misses))
    return log


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


@dataclass(frozen=True)
class Cost:
    """A monthly estimate: (item, quantity, unit, USD) rows, the total, and without a cache."""

    monthly_lookups: float
    how: str
    rows: list[tuple[str, float, str, float]]
    with_cache: float
    origin_only: float


def estimate(
    log: Log,
    prices: Prices,
    monthly_lookups: float | None = None,
    redis_tier: str = "L2",
    dynamodb_tier: str = "L3",
) -> Cost:
    """The month's cost of the tiers and the remaining origin calls, against the origin alone.

    Per function, reads of a tier are its hits and misses; writes are the
    function's origin calls plus the hits of its slower tiers (promotions).
    Lease locks, generation reads and DynamoDB storage are left out. Without
    ``monthly_lookups`` the log's volume is extrapolated from its time span.
    """
    summaries = {function: summarize(log, function) for function in log.functions()}
    lookups = sum(s.lookups for s in summaries.values())
    origin_calls = sum(s.origin_calls for s in summaries.values())
    if monthly_lookups is not None:
        how = "given"
    elif log.span > 0:
        monthly_lookups = lookups * HOURS_PER_MONTH * 3600 / log.span
        how = f"extrapolated from {lookups:,} in {log.span:,.3f} s of log"
    else:
        raise ValueError("the log spans no time: give the monthly volume (--monthly-requests)")
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
    )


# ------------------------------------------------------------------ output


def render(log: Log, cost: Cost | None) -> str:
    """The report as text: the tier table, the origin table and the cost estimate."""
    functions = log.functions()
    width = max([len("function"), *(len(f) for f in functions)])
    out = [
        f"stratacache report: {log.lines} EMF lines, {len(functions)} function(s), "
        f"{log.span:,.3f} s",
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
        ]
    return "\n".join(out) + "\n"


def hit_rate_series(log: Log, buckets: int = 20) -> dict[str, tuple[list[float], list[float]]]:
    """Per tier: (seconds since the first line, hit rate in %) per time bucket with lookups."""
    if log.first is None:
        return {}
    width = log.span / buckets if log.span > 0 else 1.0
    sums: dict[tuple[str, int], list[int]] = {}
    for seconds, tier, hits, misses in log.points:
        slot = min(int((seconds - log.first) / width), buckets - 1)
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


def chart(log: Log, cost: Cost | None) -> Figure:
    """A matplotlib figure: hit rate per tier over time, and the monthly cost comparison."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on Lambda or CI
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    left, right = figure.subplots(1, 2)
    for tier, (xs, ys) in hit_rate_series(log).items():
        left.plot(xs, ys, marker="o", label=tier)
    left.set_title("Hit rate per tier")
    left.set_xlabel("seconds since the first line")
    left.set_ylabel("hit rate (%)")
    left.set_ylim(-5, 105)
    left.legend()
    if cost is not None:
        bottom = 0.0
        for item, _, _, usd in cost.rows:
            right.bar("with the cache", usd, bottom=bottom, label=item)
            bottom += usd
        right.bar("origin every time", cost.origin_only, color="grey", label="origin every time")
        right.set_title(f"Monthly cost, {cost.monthly_lookups:,.0f} lookups")
        right.set_ylabel("USD per month")
        right.legend(fontsize="small")
    else:
        right.set_axis_off()
    figure.tight_layout()
    return figure


def draw(log: Log, cost: Cost | None, path: Path) -> None:
    """Write :func:`chart` as a PNG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chart(log, cost).savefig(path, dpi=100)


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    defaults = Prices()
    parser = argparse.ArgumentParser(
        prog="python -m stratacache.report",
        description="Hit rates, origin calls saved and a monthly cost estimate from EMF lines.",
    )
    parser.add_argument("files", nargs="*", help="log files; none or '-' reads standard input")
    parser.add_argument("--png", type=Path, help="also draw the report into this PNG file")
    parser.add_argument(
        "--monthly-requests",
        type=float,
        help="lookups per month (default: extrapolated from the log's time span)",
    )
    parser.add_argument(
        "--ecpu-price",
        type=float,
        default=defaults.ecpu_per_million,
        help="USD per million ElastiCache Serverless ECPUs (%(default)s, Valkey)",
    )
    parser.add_argument(
        "--storage-price",
        type=float,
        default=defaults.storage_gb_hour,
        help="USD per GB-hour stored in ElastiCache Serverless (%(default)s, Valkey)",
    )
    parser.add_argument(
        "--storage-gb",
        type=float,
        default=defaults.storage_gb,
        help="GB stored in ElastiCache (%(default)s: the least Valkey bills)",
    )
    parser.add_argument(
        "--read-price",
        type=float,
        default=defaults.read_per_million,
        help="USD per million DynamoDB on-demand read request units (%(default)s)",
    )
    parser.add_argument(
        "--write-price",
        type=float,
        default=defaults.write_per_million,
        help="USD per million DynamoDB on-demand write request units (%(default)s)",
    )
    parser.add_argument(
        "--origin-cost",
        type=float,
        default=defaults.origin_call,
        help="USD per call of the origin (%(default)s; set yours)",
    )
    parser.add_argument(
        "--value-kb", type=float, default=defaults.value_kb, help="average entry size in KB"
    )
    parser.add_argument(
        "--consistent-read", action="store_true", help="the DynamoDB tier reads consistently"
    )
    parser.add_argument("--redis-tier", default="L2", help="tier priced as ElastiCache (L2)")
    parser.add_argument("--dynamodb-tier", default="L3", help="tier priced as DynamoDB (L3)")
    return parser


def _read_inputs(files: Sequence[str]) -> Log:
    texts = [
        sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        for name in files or ["-"]
    ]
    return read(doc for text in texts for doc in documents(text))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; 0 on success, 2 when the input holds no stratacache EMF line."""
    args = _parser().parse_args(argv)
    log = _read_inputs(args.files)
    if not log.lines:
        sys.stderr.write("no stratacache EMF lines (dimension tier) in the input\n")
        return 2
    prices = Prices(
        ecpu_per_million=args.ecpu_price,
        storage_gb_hour=args.storage_price,
        storage_gb=args.storage_gb,
        read_per_million=args.read_price,
        write_per_million=args.write_price,
        origin_call=args.origin_cost,
        value_kb=args.value_kb,
        consistent_read=args.consistent_read,
    )
    try:
        cost: Cost | None = estimate(
            log, prices, args.monthly_requests, args.redis_tier, args.dynamodb_tier
        )
    except ValueError as exc:
        cost = None
        note = f"no cost estimate: {exc}"
    else:
        note = ""
    sys.stdout.write(render(log, cost))
    if note:
        sys.stdout.write(note + "\n")
    if args.png is not None:
        draw(log, cost, args.png)
        sys.stdout.write(f"chart: {args.png}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
