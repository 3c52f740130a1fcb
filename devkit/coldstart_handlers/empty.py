"""The baseline: what the runtime client and interpreter cost with no work at all."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "body": "{}"}
