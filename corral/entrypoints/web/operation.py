"""Typed operation inputs: a route's query string and JSON body parsed into its declared attrs classes.

A route declares ``params=`` (an attrs class of query parameters) and ``body=`` (an attrs class of the
JSON body) on its ``RouteTable`` decorator. The security middleware parses both after authorising the
call and before the handler runs, so every handler receives validated, typed values through
``params_of`` / ``body_of``:

- an unknown query parameter, a repeated one that takes a single value, or a value of the wrong type is a
  400 naming the parameter (a route declaring no ``params`` accepts no query parameter at all);
- the body is structured with the cattrs converter of ``jsonio`` (unknown fields, missing fields and wrong
  types are a 400 naming the field).

The same classes generate the OpenAPI document (``corral.entrypoints.web.openapi``), and the MCP tools and
the client CLI are generated from that document, so none of them can drift from what the API accepts.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
import uuid
from datetime import datetime
from typing import Any, Literal, TypeVar

import attrs
from aiohttp import web
from multidict import MultiMapping

from corral.core.commands import Unset
from corral.core.errors import InvalidInput
from corral.core.pagination import MAX_LIMIT
from corral.entrypoints.web.jsonio import ExpectedValue, converter, read_body

__all__ = ["BODY", "PARAMS", "PageParams", "QueryParam", "body_of", "params_of", "parse_inputs", "parse_query",
           "query_fields", "query_param"]

T = TypeVar("T")

def _has_unset(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and Unset in typing.get_args(tp)


def _without_unset(tp: Any) -> Any:
    """``X | Unset`` → ``X``: a partial update's field that was sent is structured as its real type."""
    args = tuple(a for a in typing.get_args(tp) if a is not Unset)
    return args[0] if len(args) == 1 else typing.Union[args]  # noqa: UP007 (built from a tuple)


def _unset_hook(tp: Any) -> Any:
    inner = _without_unset(tp)
    if typing.get_origin(inner) in (typing.Union, types.UnionType) and type(None) in typing.get_args(inner):
        kept = [a for a in typing.get_args(inner) if a is not type(None)]
        if len(kept) == 1:
            sub = kept[0]
            return lambda value, _t: None if value is None else converter.structure(value, sub)
    if inner is str:
        def text(value: object, _t: Any) -> str:
            if not isinstance(value, str):
                raise ExpectedValue("expected a string")
            return value
        return text
    return lambda value, _t: converter.structure(value, inner)


converter.register_structure_hook_factory(_has_unset, _unset_hook)


PARAMS: web.RequestKey[Any] = web.RequestKey("corral_params", object)
BODY: web.RequestKey[Any] = web.RequestKey("corral_body", object)


def query_param(*, default: Any = None, doc: str = "", name: str | None = None, minimum: int | None = None,
                maximum: int | None = None) -> Any:
    """An attrs field of a query class: its description, its name in the URL (when it is not a Python
    identifier, e.g. ``from``) and integer bounds, all also shown in the OpenAPI document."""
    return attrs.field(default=default, metadata={"doc": doc, "name": name, "minimum": minimum, "maximum": maximum})


@attrs.frozen
class PageParams:
    """The pagination parameters of every listing."""

    limit: int | None = query_param(doc=f"page size, 1-{MAX_LIMIT} (default 50)", minimum=1, maximum=MAX_LIMIT)
    cursor: str | None = query_param(doc="next_cursor of the previous page")


@attrs.frozen
class QueryParam:
    """One query parameter of a params class, as the URL spells it."""

    name: str
    attribute: str
    type: Any
    doc: str
    required: bool
    minimum: int | None
    maximum: int | None
    repeated: bool


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


@functools.cache
def query_fields(cls: type) -> tuple[QueryParam, ...]:
    """The query parameters a params class declares."""
    hints = typing.get_type_hints(cls)
    out: list[QueryParam] = []
    for field in attrs.fields(cls):
        tp = _unwrap_optional(hints[field.name])
        repeated = typing.get_origin(tp) in (list, tuple)
        meta = field.metadata
        out.append(QueryParam(
            name=meta.get("name") or field.name, attribute=field.name, type=tp, doc=meta.get("doc", ""),
            required=field.default is attrs.NOTHING, minimum=meta.get("minimum"), maximum=meta.get("maximum"),
            repeated=repeated,
        ))
    return tuple(out)


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _convert(param: QueryParam, tp: Any, raw: str) -> Any:
    name = param.name
    if "\x00" in raw:
        raise InvalidInput(f"query parameter {name} must not contain NUL characters", field=name)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw not in choices:
            raise InvalidInput(f"query parameter {name} must be one of {', '.join(map(str, choices))}", field=name)
        return raw
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(raw)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise InvalidInput(f"query parameter {name} must be one of {allowed}", field=name) from None
    if tp is bool:
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidInput(f"query parameter {name} must be true or false", field=name)
    if tp is int:
        try:
            value = int(raw, 10) if len(raw) <= 19 else None
        except ValueError:
            value = None
        if value is None:
            raise InvalidInput(f"query parameter {name} must be an integer", field=name)
        if param.minimum is not None and value < param.minimum:
            raise InvalidInput(f"query parameter {name} must be at least {param.minimum}", field=name)
        if param.maximum is not None and value > param.maximum:
            raise InvalidInput(f"query parameter {name} must be at most {param.maximum}", field=name)
        return value
    if tp is float:
        try:
            number = float(raw)
        except ValueError:
            raise InvalidInput(f"query parameter {name} must be a number", field=name) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidInput(f"query parameter {name} must be a finite number", field=name)
        return number
    if tp is uuid.UUID:
        try:
            return uuid.UUID(raw)
        except ValueError:
            raise InvalidInput(f"query parameter {name} must be an id (UUID)", field=name) from None
    if tp is datetime:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"query parameter {name} must be an ISO-8601 time like 2026-01-31T12:00:00Z",
                               field=name) from None
        if parsed.tzinfo is None:
            raise InvalidInput(f"query parameter {name} needs a timezone (e.g. Z)", field=name)
        return parsed
    if tp is str:
        return raw
    raise TypeError(f"unsupported query parameter type {tp!r} for {name}")  # a programming error


def parse_query(query: MultiMapping[str], cls: type[T] | None) -> T | None:
    """``query`` parsed into ``cls``; anything the class does not declare is a 400 naming it."""
    if cls is None:
        if query:
            name = next(iter(query))
            raise InvalidInput(f"unknown query parameter {name!r}: this operation takes none", field=name)
        return None
    params = query_fields(cls)  # type: ignore[arg-type]  # classes are hashable
    known = {p.name: p for p in params}
    unknown = [k for k in query if k not in known]
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}; allowed: {allowed}", field=unknown[0])
    values: dict[str, Any] = {}
    for param in params:
        raws = query.getall(param.name, [])
        if not raws:
            if param.required:
                raise InvalidInput(f"query parameter {param.name} is required", field=param.name)
            continue
        if param.repeated:
            item = (typing.get_args(param.type) or (str,))[0]
            values[param.attribute] = type_of_sequence(param.type)(_convert(param, item, r) for r in raws)
        else:
            if len(raws) > 1:
                raise InvalidInput(f"query parameter {param.name} is given more than once", field=param.name)
            values[param.attribute] = _convert(param, param.type, raws[0])
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # an attrs validator of the class
        raise InvalidInput(f"invalid query: {exc}", field="query") from None


def type_of_sequence(tp: Any) -> Any:
    return tuple if typing.get_origin(tp) is tuple else list


async def parse_inputs(request: web.Request, params: type | None, body: type | None) -> None:
    """Parse the query and (when declared) the JSON body of ``request`` into its route's classes."""
    request[PARAMS] = parse_query(request.query, params)
    if body is not None:
        if not request.can_read_body and _all_optional(body):
            request[BODY] = body()  # e.g. a merge with no options
        else:
            request[BODY] = await read_body(request, body)


@functools.cache
def _all_optional(cls: type) -> bool:
    return all(f.default is not attrs.NOTHING for f in attrs.fields(cls))


def params_of(request: web.Request, cls: type[T]) -> T:
    """The parsed query of the route (its declared ``params`` class)."""
    value = request.get(PARAMS)
    if not isinstance(value, cls):
        raise TypeError(f"{request.path}: the route does not declare params={cls.__name__}")
    return value


def path_number(request: web.Request) -> int:
    """The ``{number}`` path parameter (of an issue, merge request, pipeline...): a positive 32-bit integer."""
    try:
        value = int(request.match_info["number"])
    except ValueError:
        raise InvalidInput("number must be an integer", field="number") from None
    if value < 1 or value > 2**31 - 1:
        raise InvalidInput("number must be a positive integer", field="number")
    return value


def body_of(request: web.Request, cls: type[T]) -> T:
    """The parsed JSON body of the route (its declared ``body`` class)."""
    value = request.get(BODY)
    if not isinstance(value, cls):
        raise TypeError(f"{request.path}: the route does not declare body={cls.__name__}")
    return value
