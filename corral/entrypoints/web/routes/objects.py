"""Signed object URLs of the stores Corral serves itself (local filesystem, memory).

``ObjectStore.signed_url`` on those stores returns
``{base_url}/api/v1/objects/{key}?expires={unix}&signature={hex}`` (corral.core.storage.signing);
these routes check the signature with the store's ``verify_signed`` and then stream the
object (GET/HEAD, with single byte ranges) or store the request body (PUT). On S3 the
signed URLs point at S3 itself, so these routes answer 404 there.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
from aiohttp import web

from corral.core.errors import NotFound, PayloadTooLarge, PermissionDenied
from corral.core.storage.ports import ObjectInfo, ObjectStore
from corral.entrypoints.web.jsonio import json_response
from corral.entrypoints.web.keys import PLATFORM
from corral.entrypoints.web.operation import params_of, query_param
from corral.entrypoints.web.routing import RouteTable

__all__ = ["MAX_SIGNED_PUT_BYTES", "routes"]

routes = RouteTable(tag="objects")

PATH = "/api/v1/objects/{key:.+}"
MAX_SIGNED_PUT_BYTES = 5 * 1024**3
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


@attrs.frozen
class SignedLinkQuery:
    """The signature of an object link Corral handed out (a link without them, or with wrong ones, is a 403)."""

    expires: str | None = query_param(doc="Unix time after which the link is refused")
    signature: str | None = query_param(doc="HMAC-SHA256 signature made by Corral (hex)")


@attrs.frozen
class StoredObject:
    """An object stored through a signed PUT link."""

    key: str
    size: int
    etag: str | None


def _checked(request: web.Request) -> tuple[Any, str]:
    """The store and the key, once the request's signature is valid for its method."""
    store = request.app[PLATFORM].resolve(ObjectStore)
    verify = getattr(store, "verify_signed", None)
    key = request.match_info["key"]
    if verify is None:
        raise NotFound("this server hands out object links of its S3 store directly")
    query = params_of(request, SignedLinkQuery)
    if not verify(key, request.method, query.expires or "", query.signature or ""):
        raise PermissionDenied("the object link is invalid or has expired; ask for a new one")
    return store, key


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive range a single-range ``Range`` header asks for; None serves the whole object."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None  # multiple or malformed ranges: RFC 9110 lets us ignore the header
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        length = int(last)
        return (max(size - length, 0), size - 1) if length and size else (size, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def _headers(info: ObjectInfo) -> dict[str, str]:
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, no-store"}
    headers["Content-Type"] = info.content_type or "application/octet-stream"
    if info.etag:
        headers["ETag"] = f'"{info.etag}"'
    return headers


@routes.get(PATH, summary="Download an object through a signed link", public=True, params=SignedLinkQuery,
            response=_BINARY, content_type="application/octet-stream",
            description="Supports one byte range (206). 403 for a bad or expired signature. The content type is "
                        "the one the object was stored with.")
async def get_object(request: web.Request) -> web.StreamResponse:
    store, key = _checked(request)
    info = await store.head(key)
    headers = _headers(info)
    span = _byte_range(request.headers.get("Range"), info.size)
    if span is not None and (span[0] > span[1] or span[0] >= info.size):
        return web.Response(status=416, headers={"Content-Range": f"bytes */{info.size}"})
    response = web.StreamResponse(status=206 if span else 200, headers=headers)
    if span:
        response.headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
    response.content_length = (span[1] - span[0] + 1) if span else info.size
    await response.prepare(request)
    if request.method != "HEAD":
        start, end = span if span else (None, None)
        async for chunk in store.get(key, start=start, end=end):
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.route("HEAD", PATH, summary="Object metadata through a signed link", public=True,
              params=SignedLinkQuery, response=_BINARY, content_type="application/octet-stream",
              operation_id="head_object", description="The GET's headers (Content-Length, ETag), no body.")
async def head_object(request: web.Request) -> web.StreamResponse:
    return await get_object(request)


@routes.put(PATH, summary="Upload an object through a signed PUT link", public=True, params=SignedLinkQuery,
            request_body=_BINARY, request_content_types=("application/octet-stream",), response=StoredObject,
            status=201, description=f"The body is stored as is (at most {MAX_SIGNED_PUT_BYTES} bytes).")
async def put_object(request: web.Request) -> web.StreamResponse:
    store, key = _checked(request)
    if request.content_length is not None and request.content_length > MAX_SIGNED_PUT_BYTES:
        raise PayloadTooLarge(f"objects uploaded through links are limited to {MAX_SIGNED_PUT_BYTES} bytes")

    async def body() -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.content.iter_chunked(256 * 1024):
            received += len(chunk)
            if received > MAX_SIGNED_PUT_BYTES:
                raise PayloadTooLarge(f"objects uploaded through links are limited to {MAX_SIGNED_PUT_BYTES} bytes")
            yield chunk

    content_type = request.headers.get("Content-Type") or None
    info = await store.put(key, body(), content_type=content_type)
    return json_response(StoredObject(info.key, info.size, info.etag), status=201)
