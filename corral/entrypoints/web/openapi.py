"""OpenAPI 3.1 document generated from the route registry (attrs classes become JSON schemas)."""

from __future__ import annotations

import enum
import types
import typing
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal

import attrs

from corral import __version__
from corral.core.commands import Unset
from corral.core.pagination import Page
from corral.entrypoints.web.operation import query_fields
from corral.entrypoints.web.routing import RouteSpec, openapi_path

__all__ = ["build_openapi", "schema_of"]


def schema_of(tp: Any, components: dict[str, Any], *, output: bool = False) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) for a Python type or attrs class.

    ``output``: the class is rendered by Corral, so every field is present (all are required); a class
    that is read from requests requires only the fields without a default.
    """
    if tp is None or tp is type(None):
        return {"type": "null"}
    if isinstance(tp, dict):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is typing.Annotated:
        return schema_of(args[0], components, output=output)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not Unset]  # a partial update's "not sent" has no JSON form
        if len(kept) == 1:
            return schema_of(kept[0], components, output=output)
        return {"anyOf": [schema_of(a, components, output=output) for a in kept]}
    if origin is Page:
        item = schema_of(args[0], components, output=output) if args else {}
        return {"type": "object", "required": ["items", "next_cursor"], "additionalProperties": False,
                "properties": {"items": {"type": "array", "items": item},
                               "next_cursor": {"type": ["string", "null"]}}}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],)
        item_type: Any = args[0] if args else Any
        return {"type": "array", "items": schema_of(item_type, components, output=output)}
    if origin is dict or tp is dict:
        values = schema_of(args[1], components, output=output) if args else {}
        return {"type": "object", "additionalProperties": values}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is Any or tp is object:
        return {}
    simple = {
        str: {"type": "string"},
        int: {"type": "integer"},
        float: {"type": "number"},
        bool: {"type": "boolean"},
        uuid.UUID: {"type": "string", "format": "uuid"},
        datetime: {"type": "string", "format": "date-time"},
        bytes: {"type": "string", "contentEncoding": "base64"},
    }
    if tp in simple:
        return simple[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"enum": [m.value for m in tp]}
    if attrs.has(tp):
        name = tp.__name__
        if name not in components:
            components[name] = {}  # placeholder breaks recursion
            hints = typing.get_type_hints(tp, include_extras=True)
            props: dict[str, Any] = {}
            required: list[str] = []
            for field in attrs.fields(tp):
                prop = dict(schema_of(hints.get(field.name, Any), components, output=output))
                if field.metadata.get("doc"):
                    prop = {**prop, "description": field.metadata["doc"]} if "$ref" not in prop else \
                        {"allOf": [prop], "description": field.metadata["doc"]}
                if field.metadata.get("write_only"):  # e.g. a secret's value: accepted, never answered
                    prop["writeOnly"] = True
                key = field.metadata.get("name") or field.name  # the JSON name (``from``)
                props[key] = prop
                if output or field.default is attrs.NOTHING:
                    required.append(key)
            components[name] = {"type": "object", "properties": props, "required": required,
                                "additionalProperties": False}
            if tp.__doc__:
                components[name]["description"] = tp.__doc__.strip().splitlines()[0]
        return {"$ref": f"#/components/schemas/{name}"}
    return {}


def _query_parameters(spec: RouteSpec, components: dict[str, Any]) -> list[dict[str, Any]]:
    if not spec.typed:
        return [{"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
                for n, t, d in spec.query]
    if spec.params is None:
        return []
    out: list[dict[str, Any]] = []
    for param in query_fields(spec.params):
        schema = dict(schema_of(param.type, components))
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        entry: dict[str, Any] = {"name": param.name, "in": "query", "required": param.required, "schema": schema}
        if param.repeated:
            entry["explode"] = True
        if param.doc:
            entry["description"] = param.doc
        out.append(entry)
    return out


def build_openapi(specs: list[RouteSpec], *, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every registered route."""
    components: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "instance": {"type": "string"}, "field": {"type": "string"},
                "request_id": {"type": "string"},
            },
            "required": ["title", "status", "detail"],
        }
    }
    paths: dict[str, Any] = {}
    for spec in specs:
        if not spec.include_in_schema:
            continue
        path, params = openapi_path(spec.path)
        op: dict[str, Any] = {
            "operationId": spec.operation_id,
            "summary": spec.summary,
            "tags": list(spec.tags),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ] + _query_parameters(spec, components),
            "responses": {},
        }
        if spec.description:
            op["description"] = spec.description
        if spec.public:
            op["security"] = []
        elif spec.anonymous:
            op["security"] = [{}, {"bearerAuth": []}, {"basicAuth": []}, {"cookieAuth": []}]
        if spec.permission:
            op["x-permission"] = spec.permission
            op["x-project-scope"] = spec.project or "global"
        body = spec.body if spec.body is not None else spec.request_body
        if body is not None:
            types = ("application/json",) if spec.body is not None else spec.request_content_types
            schema = schema_of(body, components)
            op["requestBody"] = {"required": True, "content": {t: {"schema": schema} for t in types}}
        ok: dict[str, Any] = {"description": "success"}
        if spec.response is not None:
            schema = schema_of(spec.response, components, output=True)
            ok["content"] = {t: {"schema": schema} for t in (spec.content_type, *spec.response_content_types)}
        op["responses"][str(spec.status)] = ok
        problem = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        op["responses"]["default"] = {"description": "error (problem+json)", **problem}
        paths.setdefault(path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Corral API", "version": __version__},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token (crl_...)"},
                "basicAuth": {"type": "http", "scheme": "basic", "description": "any user name, API token as password"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "corral_session"},
            },
        },
        "security": [{"bearerAuth": []}, {"basicAuth": []}, {"cookieAuth": []}],
    }
