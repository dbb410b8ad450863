"""OTLP/JSON bodies: the protobuf JSON mapping, except that trace and span ids are hex, not base64."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from corral.core.errors import InvalidInput
from corral.core.safetext import loads_json

__all__ = ["parse_json"]

_ID_KEYS = ("traceId", "spanId", "parentSpanId")
# the export request's own structure takes ~10 levels; nested kvlist/array attribute values 3 more each
MAX_OTLP_JSON_DEPTH = 96


def _fix_ids(obj: Any) -> None:
    if isinstance(obj, dict):
        for key in _ID_KEYS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                try:
                    obj[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise InvalidInput(f"{key} {value[:40]!r} is not a hex string", field=key) from exc
        for key, value in obj.items():
            if key in ("attributes", "body"):  # user data: never rewrite
                continue
            if isinstance(value, dict | list):
                _fix_ids(value)
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict | list):
                _fix_ids(item)


def parse_json(body: bytes, message: Message) -> None:
    """Fill ``message`` from an OTLP/JSON body; InvalidInput with a reason if it is not one."""
    data = loads_json(body, max_depth=MAX_OTLP_JSON_DEPTH)
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    _fix_ids(data)
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"body is not an OTLP JSON export request: {exc}", field="body") from exc
