"""OpenAPI 3.1 document generated from the route registry (attrs classes become JSON schemas)."""

from __future__ import annotations

import types
import typing
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal

import attrs

from corral import __version__
from corral.entrypoints.web.routing import RouteSpec, openapi_path

__all__ = ["build_openapi", "schema_of"]


def schema_of(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) for a Python type or attrs class."""
    if tp is None or tp is type(None):
        return {"type": "null"}
    if isinstance(tp, dict):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [schema_of(a, components) for a in args]}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        item = args[0] if args else Any
        return {"type": "array", "items": schema_of(item, components)}
    if origin is dict or tp is dict:
        return {"type": "object", "additionalProperties": schema_of(args[1], components) if args else {}}
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
            hints = typing.get_type_hints(tp)
            props: dict[str, Any] = {}
            required: list[str] = []
            for field in attrs.fields(tp):
                props[field.name] = schema_of(hints.get(field.name, Any), components)
                if field.default is attrs.NOTHING:
                    required.append(field.name)
            components[name] = {"type": "object", "properties": props, "required": required,
                                "additionalProperties": False}
            if tp.__doc__:
                components[name]["description"] = tp.__doc__.strip().splitlines()[0]
        return {"$ref": f"#/components/schemas/{name}"}
    return {}


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
            ]
            + [
                {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
                for n, t, d in spec.query
            ],
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
        if spec.request_body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(spec.request_body, components)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": schema_of(spec.response, components)}}
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
