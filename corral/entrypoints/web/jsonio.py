"""Reading request bodies into attrs classes and rendering responses, with errors that name the field."""

from __future__ import annotations

import json
import math
import re
import typing
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal, TypeVar

import attrs
import cattrs
import cattrs.gen
from aiohttp import web

from corral.core.errors import InvalidInput, PayloadTooLarge
from corral.core.pagination import Page
from corral.core.safetext import MAX_JSON_DEPTH, find_nul, loads_json

__all__ = ["converter", "json_response", "page_response", "parse_json_object", "read_body", "read_json", "to_json"]

T = TypeVar("T")
MAX_JSON_BYTES = 2 * 1024 * 1024

converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
converter.register_unstructure_hook(uuid.UUID, str)
converter.register_structure_hook(uuid.UUID, lambda v, _t: uuid.UUID(str(v)))


def _parse_dt(value: object, _t: type) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("expected a timezone (e.g. Z or +00:00)")
    return parsed


converter.register_structure_hook(datetime, _parse_dt)


def _enum(value: object, tp: Any) -> Any:
    try:
        return tp(value)
    except ValueError:
        raise ValueError(f"expected one of {[m.value for m in tp]}") from None


def _strict_str(value: object, tp: type) -> str:
    if tp is not str and issubclass(tp, Enum):  # a StrEnum reaches the str hook (single dispatch by class)
        return typing.cast(str, _enum(value, tp))
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _strict_int(value: object, _t: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    if not -(2**63) <= value < 2**63:  # no store holds more than a 64-bit integer
        raise ValueError("integer out of range")
    return value


def _strict_bool(value: object, _t: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _strict_float(value: object, _t: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("expected a number")
    return float(value)


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(bool, _strict_bool)
converter.register_structure_hook(float, _strict_float)



def _is_homogeneous_sequence(tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, set, frozenset):
        return True
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis


def _strict_sequence(tp: Any) -> Any:
    """Lists, sets and ``tuple[X, ...]`` come only from a JSON array (a string is not a list of characters)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    item = args[0] if args else Any

    def hook(value: object, _t: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a JSON array")
        items = [converter.structure(v, item) for v in value]
        return items if origin is list else origin(items)

    return hook


converter.register_structure_hook_factory(_is_homogeneous_sequence, _strict_sequence)


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if attrs.has(type(value)):
        return converter.unstructure(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(value: object) -> str:
    """Serialise dicts/lists/attrs instances (UUID, datetime and enums as strings)."""
    if attrs.has(type(value)):
        value = converter.unstructure(value)
    return json.dumps(value, default=_default, separators=(",", ":"))


def json_response(value: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response for any serialisable value."""
    return web.Response(text=to_json(value), status=status, content_type="application/json", headers=headers)


def page_response(page: Page[Any], render: Any = None) -> web.Response:
    """The pinned list shape: ``{"items": [...], "next_cursor": ...}``."""
    items = [render(i) for i in page.items] if render else page.items
    return json_response({"items": items, "next_cursor": page.next_cursor})


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; malformed or non-object bodies are a 400 naming the problem."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    if not raw.strip():
        raise InvalidInput("request body must be a JSON object", field="body")
    return parse_json_object(raw)


def parse_json_object(raw: bytes | str, what: str = "request body") -> dict[str, Any]:
    """A JSON object from untrusted text: malformed, non-object, nested deeper than MAX_JSON_DEPTH, or holding NUL
    in any key or string (no store can hold it) is an InvalidInput naming the field."""
    data = loads_json(raw, max_depth=MAX_JSON_DEPTH, what=what)
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} must be a JSON object", field="body")
    bad = find_nul(data)
    if bad is not None:
        raise InvalidInput(f"{bad} must not contain NUL (\\u0000)", field=bad)
    return data


async def read_body(request: web.Request, cls: type[T]) -> T:
    """Parse the JSON body into the attrs class ``cls``: unknown, missing or mistyped fields are a 400 naming them."""
    return structure(await read_json(request), cls)


class ExpectedValue(ValueError):
    """Raised by a structure hook with a message meant for the caller ("expected one of ...")."""


def _format_error(exc: BaseException, tp: Any) -> str:
    if isinstance(exc, ExpectedValue):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ValueError) and str(exc).startswith("expected"):
        return str(exc)
    if typing.get_origin(tp) is Literal:
        return "expected one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return cattrs.v.format_exception(exc, tp)


def _literal_hook(value: object, tp: Any) -> object:
    if value not in typing.get_args(tp) or isinstance(value, bool):
        raise ExpectedValue("expected one of " + ", ".join(repr(a) for a in typing.get_args(tp)))
    return value


converter.register_structure_hook_func(lambda t: typing.get_origin(t) is Literal, _literal_hook)


def _renamed(tp: Any) -> bool:
    """An attrs class with a field whose JSON name is not its Python name (``from``: metadata ``name``)."""
    return attrs.has(tp) and any(f.metadata.get("name") for f in attrs.fields(tp))


def _renamed_hook(tp: Any) -> Any:
    overrides: dict[str, Any] = {f.name: cattrs.gen.override(rename=f.metadata["name"])
                                 for f in attrs.fields(tp) if f.metadata.get("name")}
    return cattrs.gen.make_dict_structure_fn(tp, converter, _cattrs_forbid_extra_keys=True, **overrides)


converter.register_structure_hook_factory(_renamed, _renamed_hook)


def structure(data: dict[str, Any], cls: type[T]) -> T:
    """Structure a dict into ``cls``, translating cattrs errors into one InvalidInput naming the field."""
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="body", format_exception=_format_error)
        first = messages[0] if messages else "invalid body"
        field, text = _split(first)
        field = _json_name(cls, field)
        raise InvalidInput(f"{field}: {text}" if field else text, field=field,
                           detail={"errors": messages}) from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"invalid body: {exc}", field="body") from None


_KEY = re.compile(r"\['([^'\]]*)'\]")


def _json_name(cls: Any, field: str | None) -> str | None:
    """A field path as the JSON spells it: a renamed attribute (``from_``) by its JSON name (``from``)."""
    if field is None or not attrs.has(cls):
        return field
    head, dot, rest = field.partition(".")
    name, bracket, index = head.partition("[")
    for f in attrs.fields(cls):
        if f.name == name and f.metadata.get("name"):
            return f"{f.metadata['name']}{bracket}{index}{dot}{rest}"
    return field


def _split(message: str) -> tuple[str | None, str]:
    """cattrs' "text @ body.a['k'][0]" / "extra fields found (x, y) @ body" → (field "a.k[0]", text)."""
    text, _, where = message.rpartition(" @ ")
    where = _KEY.sub(lambda m: "." + m.group(1), where)
    if not text:
        return None, message
    if text.startswith("extra fields found (") and text.endswith(")"):
        names = text[len("extra fields found ("):-1]
        first = names.split(",")[0].strip()
        prefix = where[len("body."):] + "." if where.startswith("body.") else ""
        return prefix + first, f"unknown field{'s' if ',' in names else ''} {names}"
    if where.startswith("body."):
        return where[len("body."):], text
    return None, text
