"""Example DynamoDB Streams consumer: a changed quote row invalidates its cached quote.

Deployed by ``template.yaml`` when ``EnableStreamInvalidation=true``, with the
``QuotesTable`` stream as its event source and ``ReportBatchItemFailures`` on.
"""

from __future__ import annotations

from collections.abc import Iterable

from handler import fetch_quote

from stratacache.streams import Change, Target, streams_invalidator


def affected(change: Change) -> Iterable[Target]:
    """A row ``{"symbol": "AMZN", ...}`` feeds ``fetch_quote("AMZN")``."""
    symbol = change.image.get("symbol")
    if symbol:
        yield fetch_quote, (str(symbol).upper(),)


handler = streams_invalidator(affected)
