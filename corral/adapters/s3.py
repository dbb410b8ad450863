"""S3ObjectStore: the ObjectStore port on S3 (MinIO, SeaweedFS, AWS) through aiobotocore.

One aiobotocore client (and its connection pool) is created on first use and
reused until ``close()``. Streams larger than ``part_size`` are uploaded with a
multipart upload (aborted on failure); smaller ones with one PUT. Driver errors
are translated here, in one place: a missing key is NotFound, an unsatisfiable
range InvalidInput, everything else (network, credentials, missing bucket,
throttling, 5xx) Unavailable with a message that names the cause but never a
credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import attrs
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from corral.core.errors import CorralError, InvalidInput, NotFound, Unavailable
from corral.core.pagination import decode_cursor, encode_cursor
from corral.core.storage.keys import check_range, validate_key, validate_limit, validate_prefix
from corral.core.storage.ports import ObjectInfo, ObjectListing
from corral.core.storage.signing import check_signed_url_request

__all__ = ["CONNECTION_ERRORS", "S3ObjectStore"]

# The driver errors that mean "S3 cannot be reached": the adapter turns them into Unavailable (503 with
# Retry-After); the platform lists them too, for code that talks to the client directly.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError,
    aiohttp.ClientConnectionError,
)

_MIN_PART = 5 * 1024 * 1024  # S3's minimum size of every part but the last
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_THROTTLED_CODES = {"SlowDown", "503", "ServiceUnavailable", "RequestTimeout", "InternalError", "500"}
_PRESIGN_OPERATION = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}


@functools.cache
def _session() -> Any:
    """One botocore session per process: loading the S3 service model costs ~0.5 s per session."""
    return get_session()


def _code(exc: ClientError) -> str:
    return str(
        exc.response.get("Error", {}).get("Code")
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


@attrs.define
class S3ObjectStore:
    """Objects in one S3 bucket. Call ``close()`` (or ``async with``) on shutdown to release connections."""

    endpoint: str | None
    bucket: str
    access_key: str | None = attrs.field(default=None, repr=False)
    secret_key: str | None = attrs.field(default=None, repr=False)
    region: str = "us-east-1"
    addressing_style: str = "path"  # MinIO and SeaweedFS want path style; AWS accepts it too
    part_size: int = 8 * 1024 * 1024
    chunk_size: int = 256 * 1024
    max_pool_connections: int = 32
    max_attempts: int = 3  # retries of throttling, 5xx and connection errors (botocore "standard" mode)
    _client: Any = attrs.field(default=None, init=False)
    _client_cm: Any = attrs.field(default=None, init=False)
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        if self.part_size < _MIN_PART:
            raise InvalidInput(
                f"part_size must be at least {_MIN_PART} bytes (an S3 rule)", field="part_size"
            )

    # ---------------------------------------------------------------------------------------- client, errors

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = AioConfig(
                        s3={"addressing_style": self.addressing_style},
                        signature_version="s3v4",
                        retries={"max_attempts": self.max_attempts, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=60,
                        max_pool_connections=self.max_pool_connections,
                    )
                    cm = _session().create_client(
                        "s3",
                        endpoint_url=self.endpoint,
                        region_name=self.region,
                        aws_access_key_id=self.access_key,
                        aws_secret_access_key=self.secret_key,
                        config=config,
                    )
                    self._client = await cm.__aenter__()
                    self._client_cm = cm
        return self._client

    async def close(self) -> None:
        """Release the client and its connection pool (the store may be used again: it reconnects)."""
        if self._client_cm is not None:
            cm, self._client_cm, self._client = self._client_cm, None, None
            await cm.__aexit__(None, None, None)

    aclose = close

    async def __aenter__(self) -> S3ObjectStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _translate(self, exc: Exception, key: str | None = None) -> CorralError:
        """The one place where driver errors become Corral errors."""
        if isinstance(exc, CorralError):
            return exc
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in _NOT_FOUND_CODES:
                return NotFound(f"object {key!r} does not exist" if key else "the object does not exist")
            if code in _THROTTLED_CODES:
                return Unavailable(f"S3 is unavailable or throttling ({code}); retry shortly", retry_after=1)
            if code in ("InvalidRange", "416"):
                return InvalidInput("the byte range is outside the object", field="range")
            if code == "NoSuchBucket":
                return Unavailable(
                    f"the S3 bucket {self.bucket!r} does not exist (create it or fix CORRAL_S3_BUCKET)"
                )
            if code in _CREDENTIAL_CODES:
                return Unavailable(
                    "S3 refused the configured credentials (check CORRAL_S3_ACCESS_KEY/SECRET_KEY)"
                )
            return Unavailable(f"S3 request failed ({code})", retry_after=1)
        if isinstance(exc, (*CONNECTION_ERRORS, BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError)):
            return Unavailable(
                f"S3 at {self.endpoint or 'AWS'} is unreachable ({type(exc).__name__})", retry_after=1
            )
        raise exc

    # ---------------------------------------------------------------------------------------- writing

    async def put(
        self, key: str, data: bytes | AsyncIterator[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            s3 = await self._s3()
            if isinstance(data, (bytes, bytearray, memoryview)):
                return await self._put_once(s3, key, bytes(data), content_type, extra)
            buffer = bytearray()
            iterator = aiter(data)
            async for chunk in iterator:
                buffer += chunk
                if len(buffer) >= self.part_size:
                    return await self._put_multipart(s3, key, buffer, iterator, content_type, extra)
            return await self._put_once(s3, key, bytes(buffer), content_type, extra)
        except Exception as exc:
            raise self._translate(exc, key) from exc

    async def _put_once(
        self, s3: Any, key: str, body: bytes, content_type: str | None, extra: dict[str, str]
    ) -> ObjectInfo:
        response = await s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        return ObjectInfo(key, len(body), _response_time(response), _etag(response), content_type)

    async def _put_multipart(
        self,
        s3: Any,
        key: str,
        buffer: bytearray,
        rest: AsyncIterator[bytes],
        content_type: str | None,
        extra: dict[str, str],
    ) -> ObjectInfo:
        upload = await s3.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        size = 0

        async def send(body: bytes) -> None:
            nonlocal size
            number = len(parts) + 1
            response = await s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
            size += len(body)

        try:
            async for chunk in rest:
                buffer += chunk
                while len(buffer) >= self.part_size:
                    await send(bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if buffer or not parts:
                await send(bytes(buffer))
            response = await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                )
            raise
        return ObjectInfo(key, size, _response_time(response), _etag(response), content_type)

    # ---------------------------------------------------------------------------------------- reading

    async def get(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        check_range(start, end)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            request["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        try:
            s3 = await self._s3()
            response = await s3.get_object(**request)
        except Exception as exc:
            raise self._translate(exc, key) from exc
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await body.read(self.chunk_size)
                except Exception as exc:
                    raise self._translate(exc, key) from exc
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def read(self, key: str) -> bytes:
        validate_key(key)
        try:
            s3 = await self._s3()
            response = await s3.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                return bytes(await body.read())
        except Exception as exc:
            raise self._translate(exc, key) from exc

    async def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            s3 = await self._s3()
            response = await s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._translate(exc, key) from exc
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            modified_at=_as_utc(response.get("LastModified")),
            etag=_etag(response),
            content_type=response.get("ContentType") or None,
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except NotFound:
            return False
        return True

    async def list(self, prefix: str = "", *, limit: int = 1000, token: str | None = None) -> ObjectListing:
        validate_prefix(prefix)
        validate_limit(limit)
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if token is not None:
            request["ContinuationToken"] = _decode_token(token)
        try:
            s3 = await self._s3()
            response = await s3.list_objects_v2(**request)
        except Exception as exc:
            raise self._translate(exc) from exc
        objects = [
            ObjectInfo(
                key=item["Key"],
                size=int(item["Size"]),
                modified_at=_as_utc(item.get("LastModified")),
                etag=(item.get("ETag") or "").strip('"') or None,
            )
            for item in response.get("Contents", [])
        ]
        continuation = response.get("NextContinuationToken") if response.get("IsTruncated") else None
        return ObjectListing(objects, encode_cursor({"s3": continuation}) if continuation else None)

    # ---------------------------------------------------------------------------------------- the rest

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            s3 = await self._s3()
            await s3.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            translated = self._translate(exc, key)
            if not isinstance(translated, NotFound):
                raise translated from exc

    async def move_if_absent(self, source: str, key: str) -> bool:
        # S3 has no rename; CopyObject is atomic for readers of ``key`` (they see no object or all of it). The
        # absence check and the copy are two requests (see the port: only content-addressed moves race).
        validate_key(source)
        validate_key(key)
        try:
            s3 = await self._s3()
            await s3.head_object(Bucket=self.bucket, Key=source)
            placed = not await self.exists(key)
            if placed:
                await s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source},
                                     MetadataDirective="COPY")
            await s3.delete_object(Bucket=self.bucket, Key=source)
        except Exception as exc:
            raise self._translate(exc, source) from exc
        return placed

    async def signed_url(self, key: str, *, method: str = "GET", expires_in: int = 3600) -> str:
        validate_key(key)
        method = check_signed_url_request(method, expires_in)
        try:
            s3 = await self._s3()
            url: str = await s3.generate_presigned_url(
                _PRESIGN_OPERATION[method], Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        except Exception as exc:
            raise self._translate(exc, key) from exc
        return url

    async def ping(self) -> None:
        try:
            s3 = await self._s3()
            await s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                raise Unavailable(f"the S3 bucket {self.bucket!r} does not exist") from exc
            raise self._translate(exc) from exc
        except Exception as exc:
            raise self._translate(exc) from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (for the embedded setup and tests)."""
        try:
            s3 = await self._s3()
            await s3.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            raise self._translate(exc) from exc
        except Exception as exc:
            raise self._translate(exc) from exc


def _decode_token(token: str) -> str:
    """Our next_token wraps S3's continuation token, so a foreign token is refused the same way everywhere."""
    try:
        values = decode_cursor(token)
    except InvalidInput:
        values = None
    continuation = values.get("s3") if values else None
    if not isinstance(continuation, str) or not continuation:
        raise InvalidInput("token is not a next_token returned by this store", field="token")
    return continuation


def _etag(response: dict[str, Any]) -> str | None:
    value = response.get("ETag")
    return value.strip('"') if isinstance(value, str) and value else None


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _response_time(response: dict[str, Any]) -> datetime:
    """The server's Date header (S3 does not return LastModified on PUT)."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        with contextlib.suppress(TypeError, ValueError):
            return _as_utc(parsedate_to_datetime(header))
    return datetime.now(UTC)
