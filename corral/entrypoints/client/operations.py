"""The client's commands, read from an OpenAPI document: one ``Operation`` (resource + verb) per API operation.

- **resource**: the first literal path segment after ``/api/v1/`` and, for a project's operations, after
  ``projects/{owner}/{name}/`` (``issues``, ``merge-requests``, ``pipelines``, ``secrets``, ``repo``, ...).
- **verb**: the operation's name (``corral.entrypoints.naming``, the MCP tool name) without the words of the
  resource: ``list_merge_request_comments`` under ``merge-requests`` is ``list-comments``; ``CLI_VERBS`` renames
  the few where that reads badly; a POST to `.../{id}/ACTION` whose name got its verb from the method is `ACTION`.
- **arguments**: path parameters are positionals (``{owner}/{name}`` is one ``PROJECT`` as ``owner/name``),
  query parameters and the JSON body's top-level fields are ``--flags`` typed from their schemas.

Which operations: under ``/api/``, not public (they need no client), with a JSON or text body (or none), answering
JSON, text or bytes; the WebSocket tail is left out. Nothing here names a particular route: a route added to the
server is a command as soon as the document lists it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from corral.entrypoints.naming import NAME_OVERRIDES, VERBS, operation_name, snake

__all__ = ["Field", "Operation", "operations_of", "resolve"]

_METHODS = ("get", "post", "put", "patch", "delete")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
CLI_VERBS: dict[str, str] = {"me": "get", "audit": "list", "step_log": "logs", "raw": "raw"}


@attrs.frozen
class Field:
    """A query parameter or a top-level body field."""

    name: str  # as the API spells it
    schema: dict[str, Any]  # resolved ($ref followed)
    required: bool
    description: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@attrs.frozen
class Operation:
    resource: str
    verb: str
    operation_id: str
    method: str
    path: str  # OpenAPI template: /api/v1/projects/{owner}/{name}/issues
    summary: str
    description: str
    path_params: tuple[str, ...]
    query: tuple[Field, ...]
    body: tuple[Field, ...]  # top-level fields of a JSON object body
    body_type: str | None  # None: no body; application/json or a text type
    body_required: bool
    response_type: str  # content type of the success answer
    status: int
    listing: bool
    streams: bool  # answers text/event-stream when asked (--follow)

    @property
    def positionals(self) -> tuple[str, ...]:
        """Positional arguments: the path parameters, with owner+name merged into ``project``."""
        out: list[str] = []
        params = list(self.path_params)
        i = 0
        while i < len(params):
            if params[i] == "owner" and i + 1 < len(params) and params[i + 1] == "name":
                out.append("project")
                i += 2
                continue
            out.append(params[i])
            i += 1
        return tuple(out)


def resolve(doc: dict[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """``schema`` with a top-level ``$ref`` / single ``allOf`` followed (not recursively into properties)."""
    if not isinstance(schema, dict) or depth > 20:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        target = doc.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
        return {**resolve(doc, target, depth + 1), **{k: v for k, v in schema.items() if k != "$ref"}}
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return {**resolve(doc, all_of[0], depth + 1), **{k: v for k, v in schema.items() if k != "allOf"}}
    return schema


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _resource(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    if parts[:3] == ["projects", "{owner}", "{name}"] and len(parts) > 3:
        parts = parts[3:]
    word = parts[0] if parts else "api"
    return re.sub(r"\.json$", "", word)


def _verb(resource: str, name: str, operation_id: str, method: str, path: str) -> str:
    if operation_id in CLI_VERBS:
        return CLI_VERBS[operation_id]
    parts = path.rstrip("/").split("/")
    if (method == "post" and operation_id not in NAME_OVERRIDES and snake(operation_id).split("_", 1)[0] not in VERBS
            and len(parts) > 2 and parts[-2].startswith("{") and not parts[-1].startswith("{")):
        return parts[-1]  # POST .../{number}/frobnicate: an action named by the path, not "create"
    words = name.split("_")
    nouns = {_singular(w) for w in resource.split("-")}
    kept = [words[0]] + [w for w in words[1:] if _singular(w) not in nouns]
    return "-".join(kept)


def _is_listing(doc: dict[str, Any], schema: Any) -> bool:
    schema = resolve(doc, schema)
    return schema.get("type") == "array" or "items" in schema.get("properties", {})


def _success(op: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    for code, response in op.get("responses", {}).items():
        if code.isdigit() and 200 <= int(code) < 300:
            return int(code), response if isinstance(response, dict) else {}
    return 200, {}


def _operation(doc: dict[str, Any], method: str, path: str, op: dict[str, Any]) -> Operation | None:
    if op.get("security") == []:  # public: version, the document itself, password login
        return None
    status, ok = _success(op)
    content = ok.get("content", {}) or {}
    response_type = next(iter(content), "application/json")
    if not (response_type == "application/json" or response_type.startswith(("text/", "application/"))):
        return None  # JSON, text and downloads (files, archives) only
    text = (op.get("summary", "") + " " + op.get("description", "")).lower()
    if "websocket" in op.get("summary", "").lower():
        return None
    body_type = None
    body_fields: tuple[Field, ...] = ()
    body_required = False
    request = op.get("requestBody")
    if isinstance(request, dict):
        types = request.get("content", {}) or {}
        if "application/json" in types:
            body_type = "application/json"
            schema = resolve(doc, types["application/json"].get("schema", {}))
            required = set(schema.get("required", []))
            body_required = bool(required)
            if schema.get("type") == "object":
                body_fields = tuple(
                    Field(n, resolve(doc, s), n in required, str(resolve(doc, s).get("description", "")))
                    for n, s in (schema.get("properties") or {}).items()
                )
        else:
            text_types = [t for t in types if t.startswith("text/") or t.endswith(("yaml", "xml"))]
            if not text_types:
                return None
            body_type, body_required = text_types[0], True
    path_params = tuple(_PARAM.findall(path))
    query = tuple(
        Field(p["name"], resolve(doc, p.get("schema", {})), bool(p.get("required")), str(p.get("description", "")))
        for p in op.get("parameters", []) if isinstance(p, dict) and p.get("in") == "query"
    )
    listing = _is_listing(doc, content.get(response_type, {}).get("schema", {})) if content else False
    operation_id = str(op.get("operationId") or f"{method}_{path}")
    name = operation_name(operation_id, method.upper(), listing=listing)
    resource = _resource(path)
    return Operation(
        resource=resource, verb=_verb(resource, name, operation_id, method, path), operation_id=operation_id,
        method=method.upper(), path=path, summary=str(op.get("summary", "")),
        description=str(op.get("description", "")), path_params=path_params, query=query, body=body_fields,
        body_type=body_type, body_required=body_required, response_type=response_type, status=status,
        listing=listing, streams="text/event-stream" in text or "text/event-stream" in content,
    )


def operations_of(doc: dict[str, Any]) -> dict[str, dict[str, Operation]]:
    """resource -> verb -> operation, for every operation of ``doc`` the client offers."""
    out: dict[str, dict[str, Operation]] = {}
    for path, item in (doc.get("paths") or {}).items():
        if not path.startswith("/api/") or not isinstance(item, dict):
            continue
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            operation = _operation(doc, method, path, op)
            if operation is None:
                continue
            verbs = out.setdefault(operation.resource, {})
            verb = operation.verb
            if verb in verbs:  # two operations read the same: the second keeps its operation id
                verb = operation.operation_id.replace("_", "-")
                operation = attrs.evolve(operation, verb=verb)
            verbs[verb] = operation
    return {r: dict(sorted(v.items())) for r, v in sorted(out.items())}
