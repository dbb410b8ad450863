"""MCP tools generated from the route registry: one tool per JSON API operation, nothing written by hand.

Every route declared in a ``RouteTable`` (``app[ROUTE_SPECS]``) that is a JSON API operation becomes a tool:

- **name**: the operation id (the handler's name, or the route's ``operation_id``) in snake_case, renamed by
  ``NAME_OVERRIDES`` where the handler's name is not what an agent would guess (``merge_mr`` →
  ``merge_merge_request``); a name that does not start with a verb gets one from the HTTP method (GET → ``get_``
  or ``list_`` for a listing, POST → ``create_``, PUT → ``set_``, PATCH → ``update_``, DELETE → ``delete_``).
- **inputSchema** (always ``type: object``): one property per path parameter, one per query parameter (as the
  URL spells it) and, for an operation with a JSON body, a ``body`` property holding the body object. Body
  fields are *nested* under ``body`` rather than flattened, because they collide with path parameters
  (``name`` is both the project in ``/projects/{owner}/{name}`` and the name field of many bodies).
- **outputSchema**: the documented response schema (components as ``$defs``); a response that is not an object
  (a bare list) is wrapped as ``{"result": ...}`` because MCP's structured content is an object.

Which routes qualify: under ``/api/``, not public (credentials are the point), documented, answering JSON, with a
JSON body or none, and typed (or at least documenting its response). Git smart HTTP, LFS, objects, OTLP, raw
file bytes and the WebSocket tail do not qualify.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from corral.core.pagination import Page
from corral.entrypoints.naming import METHOD_VERB, NAME_OVERRIDES, TOOL_NAME, VERBS, operation_name, snake
from corral.entrypoints.web.openapi import schema_of
from corral.entrypoints.web.operation import query_fields
from corral.entrypoints.web.routing import RouteSpec, openapi_path

__all__ = [
    "NAME_OVERRIDES", "PATH_PARAM", "TOOL_NAME", "VERBS", "CuratedTool", "Tool", "build_tools", "is_tool_route",
    "text_body", "tool_name",
]

PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}")
_METHOD_VERB = METHOD_VERB
_snake = snake


def _is_listing(response: Any) -> bool:
    origin = typing.get_origin(response)
    if origin is Page or origin in (list, tuple):
        return True
    return isinstance(response, dict) and "items" in response.get("properties", {})


def tool_name(spec: RouteSpec) -> str:
    """The tool name of an operation (see ``corral.entrypoints.naming``)."""
    return operation_name(spec.operation_id, spec.method, listing=_is_listing(spec.response))


def is_tool_route(spec: RouteSpec) -> bool:
    """Whether an operation is offered as a tool (a JSON API operation that takes credentials)."""
    return (
        spec.path.startswith("/api/") and not spec.public and spec.include_in_schema
        and spec.content_type == "application/json" and spec.method in _METHOD_VERB
        and (spec.body is not None or spec.request_body is None or "application/json" in spec.request_content_types
             or text_body(spec))
        and (spec.typed or spec.response is not None)
    )


def text_body(spec: RouteSpec) -> bool:
    """Whether the operation's body is text of another type (e.g. a YAML file): the ``body`` argument is a string."""
    return (spec.body is None and isinstance(spec.request_body, dict) and spec.request_body.get("type") == "string"
            and "application/json" not in spec.request_content_types
            and any(t.startswith("text/") or t.endswith(("yaml", "xml")) for t in spec.request_content_types))


# --- schemas -------------------------------------------------------------------------------------------------
def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _relink(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("#/$defs/" + v.rsplit("/", 1)[1]
                    if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/") else _relink(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_relink(v) for v in node]
    return node


def _self_contained(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the components it reaches as ``$defs`` (JSON Schema 2020-12, as MCP expects)."""
    names: set[str] = set()
    todo: set[str] = set()
    _refs(schema, todo)
    while todo:
        name = todo.pop()
        if name in names or name not in components:
            continue
        names.add(name)
        _refs(components[name], todo)
    out = _relink(schema)
    if names:
        out["$defs"] = {n: _relink(components[n]) for n in sorted(names)}
    return dict(out)


def _query_properties(spec: RouteSpec, components: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """(name, schema, required) of each query parameter, typed or legacy."""
    if not spec.typed:
        out = []
        for name, json_type, doc in spec.query:
            schema: dict[str, Any] = {"type": json_type}
            if doc:
                schema["description"] = doc
            out.append((name, schema, False))
        return out
    if spec.params is None:
        return []
    props = []
    for param in query_fields(spec.params):
        schema = dict(schema_of(param.type, components))
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        if param.doc:
            schema = {**schema, "description": param.doc} if "$ref" not in schema else \
                {"allOf": [schema], "description": param.doc}
        props.append((param.name, schema, param.required))
    return props


def _body_required(body: Any) -> bool:
    if isinstance(body, type) and attrs.has(body):
        return any(f.default is attrs.NOTHING for f in attrs.fields(body))
    return True


def _input_schema(spec: RouteSpec) -> dict[str, Any]:
    components: dict[str, Any] = {}
    props: dict[str, Any] = {}
    required: list[str] = []
    _template, names = openapi_path(spec.path)
    for name in names:
        if name == "number":
            props[name] = {"type": "integer", "minimum": 1, "description": "the issue or merge request number"}
        elif name == "owner":
            props[name] = {"type": "string", "description": "the project's owner (user name)"}
        elif name == "name" and "{owner}" in spec.path:
            props[name] = {"type": "string", "description": "the project's name"}
        else:
            props[name] = {"type": "string"}
        required.append(name)
    for name, schema, needed in _query_properties(spec, components):
        props[name] = schema
        if needed:
            required.append(name)
    body = spec.body if spec.body is not None else spec.request_body
    if body is not None:
        schema = dict(schema_of(body, components))
        props["body"] = {"allOf": [schema], "description": "the JSON body of the operation"} if "$ref" in schema \
            else {**schema, "description": schema.get("description", "the JSON body of the operation")}
        if _body_required(body):
            required.append("body")
    return _self_contained({"type": "object", "properties": props, "required": required,
                            "additionalProperties": False}, components)


def _output_schema(spec: RouteSpec) -> tuple[dict[str, Any] | None, bool]:
    """(outputSchema, whether the result is wrapped as {"result": ...})."""
    if spec.response is None or spec.status == 204:
        return None, False
    components: dict[str, Any] = {}
    root = dict(schema_of(spec.response, components, output=True))
    if "$ref" in root and len(root) == 1:
        name = root["$ref"].rsplit("/", 1)[1]
        target = components.get(name, {})
        if target.get("type") == "object" and not _reaches(target, name, components):
            return _self_contained(dict(target), components), False
    if root.get("type") == "object":
        return _self_contained(root, components), False
    if not root:
        return None, False
    wrapped = {"type": "object", "properties": {"result": root}, "required": ["result"]}
    return _self_contained(wrapped, components), True


def _reaches(schema: dict[str, Any], name: str, components: dict[str, Any]) -> bool:
    """Whether ``schema`` refers (transitively) to component ``name`` (then it cannot be inlined as the root)."""
    seen: set[str] = set()
    todo: set[str] = set()
    _refs(schema, todo)
    while todo:
        current = todo.pop()
        if current == name:
            return True
        if current in seen or current not in components:
            continue
        seen.add(current)
        _refs(components[current], todo)
    return False


# --- the tools -----------------------------------------------------------------------------------------------
CuratedCall = Callable[[Any, dict[str, Any]], Awaitable[Any]]


@attrs.frozen
class CuratedTool:
    """A higher-level tool composed of several operations (each still called through its own route)."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    needs: tuple[str, ...]  # operation ids it calls: offered only when all exist and the caller may call them
    call: CuratedCall  # (Caller, arguments) -> ToolResult
    replaces: tuple[str, ...] = ()  # operation ids whose generated tool this one supersedes


@attrs.frozen
class Tool:
    """One MCP tool: either a route (``spec``) or a curated composition (``curated``)."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    spec: RouteSpec | None = None
    wrapped: bool = False  # the route's answer is not an object: structured content is {"result": answer}
    curated: CuratedTool | None = None
    needs: tuple[RouteSpec, ...] = ()  # the routes a caller must be able to call to see this tool

    def describe(self, *, structured: bool) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it (``structured``: the revision knows outputSchema and title)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description, "inputSchema": self.input_schema}
        if structured:
            out["title"] = self.title
            if self.output_schema is not None:
                out["outputSchema"] = self.output_schema
        if self.spec is not None:
            read_only = self.spec.method == "GET"
            out["annotations"] = {"readOnlyHint": read_only, "destructiveHint": self.spec.method == "DELETE",
                                  "idempotentHint": self.spec.method in ("GET", "PUT", "DELETE"),
                                  "openWorldHint": False}
        else:
            out["annotations"] = {"readOnlyHint": True, "openWorldHint": False}
        return out


def _description(spec: RouteSpec) -> str:
    text = spec.summary.rstrip(".") + "."
    if spec.description:
        text += " " + spec.description
    text += f"\n\nHTTP: {spec.method} {openapi_path(spec.path)[0]}"
    if spec.permission:
        where = {"path": " in the project", "query": " in the project given (or globally)"}.get(spec.project or "", "")
        text += f"; needs {spec.permission}{where}"
    if text_body(spec):
        text += f". The body ({spec.request_content_types[0]} text) goes in the `body` argument"
    elif spec.body is not None or spec.request_body is not None:
        text += ". The JSON body goes in the `body` argument"
    return text


def tool_of(spec: RouteSpec, name: str) -> Tool:
    """The tool of one route."""
    output, wrapped = _output_schema(spec)
    return Tool(name=name, title=spec.summary, description=_description(spec), input_schema=_input_schema(spec),
                output_schema=output, spec=spec, wrapped=wrapped)


def build_tools(specs: list[RouteSpec], curated: list[CuratedTool] = ()) -> list[Tool]:  # type: ignore[assignment]
    """Every tool the routes (and the curated compositions whose operations exist) offer, in route order.

    Curated tools come first and keep their names; a generated name that is already taken gets the route's tag
    as a suffix (``list_rules_observe``); a clash that remains is a programming error (ValueError)."""
    by_id = {s.operation_id: s for s in specs if s.path.startswith("/api/")}
    tools: list[Tool] = []
    taken: set[str] = set()
    replaced: set[str] = set()
    for c in curated:
        if all(n in by_id for n in c.needs):
            tools.append(Tool(name=c.name, title=c.title, description=c.description, input_schema=c.input_schema,
                              output_schema=c.output_schema, curated=c,
                              needs=tuple(by_id[n] for n in c.needs)))
            taken.add(c.name)
            replaced.update(c.replaces)
    for spec in specs:
        if not is_tool_route(spec) or spec.operation_id in replaced:
            continue
        name = tool_name(spec)
        if name in taken:
            name = f"{name}_{_snake(spec.tags[0] if spec.tags else spec.method.lower())}"
        if name in taken:
            raise ValueError(f"two operations map to the tool name {name!r}: rename one (operation_id=...)")
        taken.add(name)
        tools.append(tool_of(spec, name))
    return tools


def route_url(spec: RouteSpec, values: dict[str, str]) -> str:
    """The route's path with ``values`` substituted (quoted; a regex parameter such as {path:.*} keeps '/')."""
    from urllib.parse import quote

    def sub(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return quote(value, safe="/" if match.group(2) else "")

    return PATH_PARAM.sub(sub, spec.path)
