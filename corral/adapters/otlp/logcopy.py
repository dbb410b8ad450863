"""OTLP logs straight into PostgreSQL binary COPY rows (the ingest hot path, run in decoder processes).

Same rules as ``OtlpCodec.logs`` (envelope, attributes, levels, timestamps) without building
the row tuple, the datetime or the hex ids: timestamps become COPY microseconds, trace ids
their 16 raw bytes, and the envelope columns are encoded once per envelope.
"""

from __future__ import annotations

import struct
from binascii import hexlify as _hexlify
from functools import partial
from json.encoder import encode_basestring_ascii as _enc  # what json.dumps uses (C)
from typing import Any

import attrs

from corral.adapters.otlp.codec import (
    Lookup,
    _attrs,
    _dumps,
    _resource_extra,
    _value,
    envelope_or_reject,
    log_records_of,
    no_nul,
)
from corral.adapters.otlp.pgcopy import NULL, PG_EPOCH_US, json_field, text
from corral.adapters.otlp.rawattrs import KeyValue
from corral.core.errors import InvalidInput
from corral.core.observe.envelope import (
    ENVELOPE_KEYS,
    NUMBER_LEVELS,
    Envelope,
    level_from_severity,
    strip_envelope,
)
from corral.core.observe.model import Caller
from corral.core.observe.rowids import RowIds

__all__ = ["EncodedLogs", "encode_logs"]

_head = struct.Struct(">hiqiq").pack  # field count, id (int8), ts (timestamptz)
_len = struct.Struct(">i").pack
_UUID_LEN = _len(16)
_SPAN_LEN = _len(16)
_INF = float("inf")
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_LEVELS = {name: text(name) for name in ("trace", "debug", "info", "warn", "error", "fatal")}


@attrs.define
class EncodedLogs:
    data: bytes = b""
    count: int = 0
    rejected: int = 0
    error_message: str = ""
    project_ids: set[Any] = attrs.Factory(set)


def _envelope_fields(env: Envelope) -> bytes:
    """project_id, session_id, user_id, service as COPY fields (in LOG_COLUMNS order)."""
    return b"".join(
        (
            NULL if env.project_id is None else _UUID_LEN + env.project_id.bytes,
            NULL if env.session_id is None else text(env.session_id),
            NULL if env.user_id is None else _UUID_LEN + env.user_id.bytes,
            text(env.service),
        )
    )


def encode_logs(
    req: Any, caller: Caller, lookup: Lookup, ids: RowIds, now_ns: int, *, raw_attributes: bool = False
) -> EncodedLogs:
    """Encode every log record of ``req``; ``now_ns`` stamps records without a time.

    ``raw_attributes``: ``req`` came from ``rawattrs.parse_raw_logs`` (record attributes as KeyValue
    bytes). Raises InvalidInput for an attribute that is not a valid KeyValue."""
    result = EncodedLogs()
    out: list[bytes] = []
    append = out.append
    envelope_keys = ENVELOPE_KEYS
    levels = NUMBER_LEVELS
    level_fields = _LEVELS
    epoch = PG_EPOCH_US
    env_cache: dict[Envelope, bytes] = {}
    count = 0
    for rl in req.resource_logs:
        res = _attrs(rl.resource.attributes)
        env = envelope_or_reject(result, res, caller, lookup,
                                 records=partial(log_records_of, rl))
        if env is None:
            continue
        extra = _resource_extra(res)
        tail = (',"resource":' + _dumps(extra) + "}") if extra else ""
        close = tail or "}"
        only = json_field(no_nul(('{"resource":' + _dumps(extra) + "}") if extra else "{}"))
        env_bytes = env_cache.get(env) or env_cache.setdefault(env, _envelope_fields(env))
        result.project_ids.add(env.project_id)
        for sl in rl.scope_logs:
            records = sl.log_records
            block = ids.ids(len(records))
            for rid, rec in zip(block, records):  # noqa: B905 - one id per record by construction
                kvs = rec.attributes
                fields = env_bytes
                if kvs:
                    doc = _raw_attrs_json(kvs, close) if raw_attributes else _attrs_json(kvs, envelope_keys, close)
                    if doc is not None:  # the common case: scalar attributes, no envelope keys
                        raw = (doc if "\\u0000" not in doc else no_nul(doc)).encode()
                        attributes = _len(len(raw)) + raw  # a json field (044)
                        kvs = None
                if kvs:
                    attrs_ = _attrs([_key_value(r) for r in kvs] if raw_attributes else kvs)
                    if not envelope_keys.isdisjoint(attrs_):
                        found = envelope_or_reject(result, attrs_, caller, lookup, env)
                        if found is None:
                            continue
                        e = found
                        attrs_ = strip_envelope(attrs_)
                        fields = env_cache.get(e) or env_cache.setdefault(e, _envelope_fields(e))
                        result.project_ids.add(e.project_id)
                    doc = _dumps(attrs_) if attrs_ else "{}"
                    attributes = json_field(
                        no_nul((doc[:-1] + tail if len(doc) > 2 else only_text(extra)) if tail else doc)
                    )
                elif kvs is not None:
                    attributes = only
                body = rec.body
                message = body.string_value  # the common case; an empty one may be another kind
                if not message:
                    kind = body.WhichOneof("value")
                    if kind is not None and kind != "string_value":
                        value = _value(body)
                        message = value if isinstance(value, str) else _dumps(value)
                if "\x00" in message:  # PostgreSQL text cannot hold NUL
                    message = message.replace("\x00", "\ufffd")
                msg = message.encode()
                trace = rec.trace_id
                span = rec.span_id
                number = rec.severity_number
                append(
                    _head(11, 8, rid, 8, (rec.time_unix_nano or rec.observed_time_unix_nano or now_ns) // 1000 - epoch)
                )
                append(_UUID_LEN + trace if len(trace) == 16 and trace != _ZERO16 else NULL)
                append(_SPAN_LEN + _hexlify(span) if len(span) == 8 and span != _ZERO8 else NULL)
                append(fields)
                append(
                    level_fields[levels[number] if 0 < number < 25 else level_from_severity(number, rec.severity_text)]
                )
                append(_len(len(msg)) + msg)
                append(attributes)
                count += 1
    result.data = b"".join(out)
    result.count = count
    return result


# The kinds an attribute key was last seen with: most keys keep one type, so reading that field
# directly (and trusting a non-zero value: a oneof's unset members read as zero) saves the
# WhichOneof call, a quarter of the upb work per attribute.
_STR, _INT, _DBL, _BOOL = 1, 2, 3, 4
_KIND_CODES = {"string_value": _STR, "int_value": _INT, "double_value": _DBL, "bool_value": _BOOL}


def _attrs_json(kvs: Any, envelope_keys: frozenset[str], close: str = "}") -> str | None:
    """The attributes as a JSON object straight from the KeyValues (no dict, no json.dumps), or None
    when one is an envelope key or not a plain scalar (the caller then takes the general path).
    Duplicate keys are left in: PostgreSQL's json operators read the last, as the dict would."""
    parts: list[str] = []
    append = parts.append
    keys = _KEYS
    enc = _enc
    for kv in kvs:
        key = kv.key
        known = keys.get(key)
        if known is None:
            if key in envelope_keys:
                return None
            if len(keys) > 10_000:
                keys.clear()
            known = keys[key] = [enc(key) + ":", 0]
        pre, expect = known
        v = kv.value
        if expect == _STR:
            sv = v.string_value
            if sv:
                append(pre + enc(sv))
                continue
        elif expect == _INT:
            iv = v.int_value
            if iv:
                append(pre + str(iv))
                continue
        elif expect == _DBL:
            d = v.double_value
            if d and -_INF < d < _INF:  # (NaN fails both comparisons)
                append(pre + repr(d))
                continue
        elif expect == _BOOL and v.bool_value:
            append(pre + "true")
            continue
        kind = v.WhichOneof("value")
        known[1] = _KIND_CODES.get(kind, 0)
        if kind == "string_value":
            append(pre + enc(v.string_value))
        elif kind == "int_value":
            append(pre + str(v.int_value))
        elif kind == "bool_value":
            append(pre + ("true" if v.bool_value else "false"))
        elif kind == "double_value":
            d = v.double_value
            if d != d or d in (_INF, -_INF):
                return None
            append(pre + repr(d))
        else:
            return None
    return "{" + ",".join(parts) + close if parts else None


_KEYS: dict[str, list[Any]] = {}

# serialized KeyValue -> its JSON member ('"key":value'); "" when it needs the general path (an
# envelope key, a value that is not a plain scalar). Doubles are not kept (mostly unique values).
_FRAGMENTS: dict[bytes, str] = {}
_FRAGMENTS_MAX = 50_000


_DOUBLE_KEYS: dict[bytes, str] = {}
_unpack_double = struct.Struct("<d").unpack_from


def _double_key(key: bytes) -> str:
    """'"key":' for a key's UTF-8 bytes ("" for an envelope key: the general path resolves it)."""
    pre = _DOUBLE_KEYS.get(key)
    if pre is None:
        try:
            name = key.decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput("a log record attribute key is not valid UTF-8", field="body") from exc
        pre = "" if name in ENVELOPE_KEYS else _enc(name) + ":"
        if len(_DOUBLE_KEYS) >= 10_000:
            _DOUBLE_KEYS.clear()
        _DOUBLE_KEYS[key] = pre
    return pre


def _key_value(raw: bytes) -> Any:
    try:
        return KeyValue.FromString(raw)
    except Exception as exc:  # upb raises DecodeError; bad UTF-8 in a string is one too
        raise InvalidInput(f"a log record attribute is not a valid KeyValue: {exc}", field="body") from exc


def _raw_attrs_json(raws: Any, close: str) -> str | None:
    """``_attrs_json`` for serialized KeyValues: known ones are one dict lookup each."""
    parts: list[str] = []
    append = parts.append
    fragments = _FRAGMENTS
    for raw in raws:
        fragment = fragments.get(raw)
        if fragment is None:
            n = len(raw)
            # a double (durations, ratios: mostly unique) read in place: 0x0a len key 0x12 0x09 0x21 <8 bytes LE>
            if n > 13 and raw[0] == 10 and raw[1] == n - 13 < 128 and raw[n - 11 : n - 8] == b"\x12\x09\x21":
                pre = _double_key(raw[2 : n - 11])
                d = _unpack_double(raw, n - 8)[0]
                if pre and -_INF < d < _INF:
                    append(pre + repr(d))
                    continue
            kv = _key_value(raw)
            fragment = _attrs_json((kv,), ENVELOPE_KEYS) or ""
            if fragment:
                fragment = fragment[1:-1]  # '{"k":v}' -> '"k":v'
            if kv.value.WhichOneof("value") != "double_value":
                if len(fragments) >= _FRAGMENTS_MAX:
                    fragments.clear()
                fragments[raw] = fragment
        if not fragment:
            return None
        append(fragment)
    return "{" + ",".join(parts) + close if parts else None


def only_text(extra: dict[str, Any] | None) -> str:
    return ('{"resource":' + _dumps(extra) + "}") if extra else "{}"
