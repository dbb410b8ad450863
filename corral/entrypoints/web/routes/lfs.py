"""Git LFS: the batch API and the basic transfer adapter, backed by the object store.

Objects live under ``lfs/<project id>/<oid[0:2]>/<oid[2:4]>/<oid>``. When the store signs URLs (S3
presigned URLs, or the links Corral serves itself at /api/v1/objects/...), the batch answer's
``download`` / ``upload`` hrefs are those signed URLs, so LFS bytes go between the client and the store
directly; ``verify`` still comes to Corral. Otherwise (``CORRAL_LFS_DIRECT_TRANSFER=false``, or a store
without http(s) links) the hrefs point at Corral, which streams the bytes and hashes uploads on the way in.

An object under its key is immutable: only bytes checked against the oid (SHA-256 and size) ever get there,
and never over an existing object. An upload goes to a staging key first
(``lfs-staging/<project id>/<oid>/<nonce>``; a signed upload link names the staging key, never the object's),
is checked, and is then moved to the object's key only if that key is absent (``ObjectStore.move_if_absent``).
The batch API answers an upload of an oid already stored with no actions (size mismatch: a 422 error for that
object), as the LFS batch spec says. Staged uploads never verified are swept after a day (``sweep_staging``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
from aiohttp import web

from corral.core.audit.model import AuditEntry
from corral.core.errors import CorralError, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from corral.core.ids import uuid7
from corral.core.projects.model import Project, PurgeParts
from corral.core.safetext import loads_json
from corral.core.uow import UnitOfWork
from corral.entrypoints.web.keys import WEB_AUTH, principal_of
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.project_access import actor_of, kit, project_of
from corral.entrypoints.web.routing import RouteTable

__all__ = ["key_of", "lfs_authenticate_header", "lfs_purge_parts", "routes", "signed_href", "staging_key_of",
           "sweep_staging"]

routes = RouteTable(tag="git")
log = logging.getLogger("corral.lfs")

REPO = "/{owner}/{name}"
LFS_JSON = "application/vnd.git-lfs+json"
_OID = re.compile(r"^[0-9a-f]{64}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")
STAGING = "lfs-staging"
STALE_STAGING = timedelta(days=1)
_CHUNK = 256 * 1024
_CHALLENGE = 'Basic realm="Corral"'
DOWNLOAD_EXPIRES = 3600
UPLOAD_EXPIRES = 900  # a signed PUT lets its holder replace the object until it expires: keep it short


# The LFS wire format (git-lfs docs/api/batch.md), documented as schemas: the handlers read and answer these
# themselves, since a malformed LFS request is a 422 in LFS's own error format, not a problem document.
_OID_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 of the content, hex"}
_ACTION = {"type": "object", "required": ["href", "header", "expires_in"], "properties": {
    "href": {"type": "string"}, "header": {"type": "object", "additionalProperties": {"type": "string"}},
    "expires_in": {"type": "integer"}}}
BATCH_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["operation", "objects"], "properties": {
        "operation": {"enum": ["upload", "download"]},
        "transfers": {"type": "array", "items": {"type": "string"}, "description": "only basic is served"},
        "ref": {"type": "object", "properties": {"name": {"type": "string"}}},
        "hash_algo": {"type": "string"},
        "objects": {"type": "array", "items": {"type": "object", "required": ["oid", "size"], "properties": {
            "oid": _OID_SCHEMA, "size": {"type": "integer", "minimum": 0}}}},
    }}
BATCH_RESPONSE: dict[str, Any] = {
    "type": "object", "required": ["transfer", "objects"], "properties": {
        "transfer": {"const": "basic"},
        "objects": {"type": "array", "items": {"type": "object", "required": ["oid", "size"], "properties": {
            "oid": {"type": "string"}, "size": {"type": ["integer", "null"]}, "authenticated": {"type": "boolean"},
            "actions": {"type": "object", "description": "none for an upload the server already has",
                        "properties": {"download": _ACTION, "upload": _ACTION, "verify": _ACTION}},
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "integer"}, "message": {"type": "string"}}}}}},
    }}
VERIFY_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["oid", "size"], "properties": {"oid": _OID_SCHEMA, "size": {"type": "integer"}}}
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "maxProperties": 0}
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
_LFS_TYPES = (LFS_JSON, "application/json")


@attrs.frozen
class VerifyQuery:
    """The query of a verify link from a batch answer (the link is used as given)."""

    direct: int | None = query_param(doc="1: the object went to the store through a signed URL", minimum=0,
                                     maximum=1)
    upload: str | None = query_param(doc="which signed upload (32 hex digits) to check, with direct=1")


async def lfs_authenticate_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: a 401 under /info/lfs/ also carries ``LFS-Authenticate`` (LFS clients)."""
    if response.status == 401 and "/info/lfs/" in request.path and "WWW-Authenticate" in response.headers:
        response.headers["LFS-Authenticate"] = response.headers["WWW-Authenticate"]


def _lfs(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type=LFS_JSON)


def key_of(project: Project, oid: str) -> str:
    return f"lfs/{project.id}/{oid[:2]}/{oid[2:4]}/{oid}"


async def lfs_purge_parts(_uow: UnitOfWork, project: Project) -> PurgeParts:
    """A deleted project's LFS objects and the uploads waiting for their check (corral.core.projects.purge)."""
    return PurgeParts(prefixes=(f"lfs/{project.id}/", f"{STAGING}/{project.id}/"))


def staging_key_of(project: Project, oid: str, nonce: str) -> str:
    """Where one upload of ``oid`` waits for its check (``nonce``: 32 hex digits, one per upload link)."""
    return f"{STAGING}/{project.id}/{oid}/{nonce}"


def _base(request: web.Request, project: Project) -> str:
    configured = kit(request).configured_base_url
    origin = configured.rstrip("/") if configured else str(request.url.origin())
    return f"{origin}/{project.full_name}.git/info/lfs"


async def signed_href(request: web.Request, key: str, method: str, expires_in: int) -> str | None:
    """A signed store URL for ``method`` on ``key`` the client can reach, or None (stream through Corral)."""
    k = kit(request)
    if not k.lfs_direct_transfer:
        return None
    try:
        url = await k.objects.signed_url(key, method=method, expires_in=expires_in)
    except CorralError:
        log.warning("the object store could not sign an LFS link; streaming through Corral", exc_info=True)
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None  # e.g. the in-memory store's memory:// links
    if hasattr(k.objects, "verify_signed") and not k.configured_base_url:
        # a link Corral serves itself: the signature covers key, method and expiry, not the host, so point it
        # at the origin this client reached us through
        origin = urlsplit(str(request.url.origin()))
        url = urlunsplit((origin.scheme, origin.netloc, parts.path, parts.query, ""))
    return url


async def _may(request: web.Request, permission: str, project: Project) -> bool:
    try:
        await request.app[WEB_AUTH].authorize(request, principal_of(request), permission, project.id)
    except PermissionDenied:
        return False
    return True


@routes.post(f"{REPO}/info/lfs/objects/batch", summary="Git LFS batch API (upload / download)",
             permission="project:read", project="path", anonymous=True, challenge=_CHALLENGE, params=None,
             request_body=BATCH_REQUEST, request_content_types=_LFS_TYPES, response=BATCH_RESPONSE,
             content_type=LFS_JSON,
             description="Errors are LFS documents ({message}): 422 for a malformed request, 403 for a refused "
                         "upload; a 401 also carries LFS-Authenticate.")
async def batch(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    try:
        body = loads_json(await request.read(), what="an LFS batch request")
        operation = body["operation"]
        objects = body["objects"]
        assert isinstance(objects, list) and operation in ("upload", "download")
    except (InvalidInput, ValueError, KeyError, TypeError, AssertionError):
        return _lfs(422, {"message": "a batch request needs operation (upload|download) and objects [{oid, size}]"})
    transfers = body.get("transfers") or ["basic"]
    if "basic" not in transfers:
        return _lfs(422, {"message": "only the basic transfer adapter is supported"})
    if operation == "upload":
        if principal_of(request) is None:
            raise Unauthenticated("authentication required to upload LFS objects")
        if project.archived or not await _may(request, "project:write", project):
            return _lfs(403, {"message": f"you may not upload LFS objects to {project.full_name}"})
    k = kit(request)
    base = _base(request, project)
    header = {"Authorization": request.headers["Authorization"]} if "Authorization" in request.headers else {}
    out = []
    for item in objects[:1000]:
        oid, size = (item.get("oid"), item.get("size")) if isinstance(item, dict) else (None, None)
        if not isinstance(oid, str) or not _OID.match(oid) or not isinstance(size, int) or size < 0:
            out.append({"oid": str(oid), "size": size, "error": {"code": 422, "message": "invalid oid or size"}})
            continue
        entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        stored = await _stored_size(request, project, oid)
        present = stored == size
        if operation == "download":
            if not present:
                entry["error"] = {"code": 404, "message": "object not found"}
            else:
                signed = await signed_href(request, key_of(project, oid), "GET", DOWNLOAD_EXPIRES)
                entry["actions"] = {"download": (
                    {"href": signed, "header": {}, "expires_in": DOWNLOAD_EXPIRES} if signed else
                    {"href": f"{base}/objects/{oid}", "header": header, "expires_in": DOWNLOAD_EXPIRES})}
        elif stored is not None and not present:  # objects are immutable: this oid has other bytes
            entry["error"] = {"code": 422, "message": f"object {oid} is already stored with size {stored}"}
        elif size > k.max_lfs_object_bytes:
            entry["error"] = {"code": 422, "message": f"objects are limited to {k.max_lfs_object_bytes} bytes"}
        elif not present:
            nonce = uuid.uuid4().hex
            signed = await signed_href(request, staging_key_of(project, oid, nonce), "PUT", UPLOAD_EXPIRES)
            entry["actions"] = {
                "upload": ({"href": signed, "header": {}, "expires_in": UPLOAD_EXPIRES} if signed else
                           {"href": f"{base}/objects/{oid}", "header": header, "expires_in": UPLOAD_EXPIRES}),
                "verify": {"href": f"{base}/verify" + (f"?direct=1&upload={nonce}" if signed else ""),
                           "header": header, "expires_in": UPLOAD_EXPIRES},
            }
        # present (same oid and size): no actions, the client has nothing to upload
        out.append(entry)
    return _lfs(200, {"transfer": "basic", "objects": out})


async def _stored_size(request: web.Request, project: Project, oid: str) -> int | None:
    try:
        info = await kit(request).objects.head(key_of(project, oid))
    except NotFound:
        return None
    return info.size


async def _present(request: web.Request, project: Project, oid: str, size: int) -> bool:
    return await _stored_size(request, project, oid) == size


async def _sha256(store: Any, key: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async with aclosing(store.get(key)) as chunks:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _oid(request: web.Request) -> str:
    oid = request.match_info["oid"]
    if not _OID.match(oid):
        raise NotFound("no such LFS object")
    return oid


@routes.get(f"{REPO}/info/lfs/objects/{{oid}}", summary="Git LFS download (basic transfer)",
            permission="project:read", project="path", anonymous=True, challenge=_CHALLENGE, params=None,
            response=_BINARY, content_type="application/octet-stream")
async def download(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    key = key_of(project, _oid(request))
    store = kit(request).objects
    info = await store.head(key)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = info.size
    await response.prepare(request)
    async for chunk in store.get(key):
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.put(f"{REPO}/info/lfs/objects/{{oid}}", summary="Git LFS upload (basic transfer)",
            permission="project:write", project="path", challenge=_CHALLENGE, params=None,
            request_body=_BINARY, request_content_types=("application/octet-stream",),
            response={"type": "string", "maxLength": 0, "description": "empty"},
            content_type="application/octet-stream",
            description="The content must hash to the oid (else 422, an LFS document).")
async def upload(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    if project.archived:
        return _lfs(403, {"message": f"{project.full_name} is archived"})
    oid = _oid(request)
    k = kit(request)
    digest = hashlib.sha256()
    size = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > k.max_lfs_object_bytes:
                raise web.HTTPRequestEntityTooLarge(max_size=k.max_lfs_object_bytes, actual_size=size)
            digest.update(chunk)
            yield chunk

    staged = staging_key_of(project, oid, uuid.uuid4().hex)
    try:
        await k.objects.put(staged, body(), content_type="application/octet-stream")
    except BaseException:
        await k.objects.delete(staged)
        raise
    if digest.hexdigest() != oid:
        await k.objects.delete(staged)
        return _lfs(422, {"message": "the uploaded content does not hash to the oid"})
    if await k.objects.move_if_absent(staged, key_of(project, oid)):  # else: stored already, the same bytes
        await _audit_upload(request, project, oid, size, via="corral")
    return web.Response(status=200)


async def _audit_upload(request: web.Request, project: Project, oid: str, size: int, *, via: str) -> None:
    """The audit row of an LFS object stored through Corral (``via="corral"``) or checked after a direct upload."""
    k = kit(request)
    actor = actor_of(request)
    async with k.uow_factory() as uow:
        await uow.audit.record(AuditEntry(
            id=uuid7(), actor_id=actor.id, actor_name=actor.name, action="lfs.upload", resource="project",
            created_at=k.clock.now(), resource_id=project.id, project_id=project.id,
            detail={"oid": oid, "size": size, "via": via},
        ))
        await uow.commit()


@routes.post(f"{REPO}/info/lfs/verify", summary="Git LFS verify after upload (size and SHA-256 checked)",
             permission="project:write", project="path", challenge=_CHALLENGE, params=VerifyQuery,
             request_body=VERIFY_REQUEST, request_content_types=_LFS_TYPES, response=_EMPTY_OBJECT,
             content_type=LFS_JSON,
             description="404 (an LFS document) when nothing was uploaded for the object, 422 when the content "
                         "does not hash to the oid.")
async def verify(request: web.Request) -> web.StreamResponse:
    project = await project_of(request)
    try:
        body = loads_json(await request.read(), what="an LFS verify request")
        oid, size = body["oid"], body["size"]
    except (InvalidInput, ValueError, KeyError, TypeError):
        return _lfs(422, {"message": "verify needs {oid, size}"})
    if not isinstance(oid, str) or not _OID.match(oid) or not isinstance(size, int):
        return _lfs(422, {"message": "verify needs {oid, size}"})
    k = kit(request)
    key = key_of(project, oid)
    query = params_of(request, VerifyQuery)
    nonce = query.upload or ""
    if query.direct == 1 and _NONCE.match(nonce):  # bytes that went around Corral
        staged = staging_key_of(project, oid, nonce)
        try:
            digest, stored = await _sha256(k.objects, staged)
        except NotFound:  # verified already (a retried verify), or never uploaded
            if await _present(request, project, oid, size):
                return _lfs(200, {})
            return _lfs(404, {"message": "nothing was uploaded for this object"})
        if digest != oid or stored != size:
            await k.objects.delete(staged)
            return _lfs(422, {"message": "the uploaded content does not hash to the oid (or differs in size);"
                                         " upload it again"})
        if await k.objects.move_if_absent(staged, key):  # else: stored meanwhile by another upload, same bytes
            await _audit_upload(request, project, oid, size, via="signed_url")
        return _lfs(200, {})
    if not await _present(request, project, oid, size):
        return _lfs(404, {"message": "object not found (or its size differs)"})
    digest, _ = await _sha256(k.objects, key)
    if digest != oid:  # only an object stored before uploads were checked can be this
        await k.objects.delete(key)
        return _lfs(422, {"message": "the stored content does not hash to the oid; it was removed, upload it again"})
    return _lfs(200, {})


async def sweep_staging(objects: Any, clock: Any, *, older_than: timedelta = STALE_STAGING) -> int:
    """Delete the staged LFS uploads never verified (their link expired long ago); returns how many."""
    cutoff = clock.now() - older_than
    removed = 0
    token = None
    while True:
        page = await objects.list(f"{STAGING}/", limit=1000, token=token)
        for info in page.objects:
            if info.modified_at < cutoff:
                await objects.delete(info.key)
                removed += 1
        token = page.next_token
        if token is None:
            return removed
