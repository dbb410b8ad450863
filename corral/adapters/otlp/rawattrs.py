"""An OTLP logs request parsed with each log record's attributes left as raw KeyValue bytes.

Reading attributes through protobuf message objects costs three Python objects per attribute (the
KeyValue, its key, its AnyValue) and is most of the decoder's time. Parsed as ``repeated bytes``
instead (the same wire format: a length-delimited field), each attribute is one bytes object, and
the bytes of an attribute seen before (``tool_name=bash``, ``environment=production``) map straight
to its JSON fragment through a dict. Attributes not seen before are parsed as real KeyValues then,
which also validates them (UTF-8 keys and strings) exactly as a full parse would.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2

from corral.core.errors import InvalidInput

__all__ = ["KeyValue", "RawLogsRequest", "parse_raw_logs"]

_PACKAGE = "corral.otlp.rawattrs"
_LOGS = ".opentelemetry.proto.logs.v1."


def _build() -> Any:
    source = descriptor_pb2.FileDescriptorProto()
    logs_pb2.DESCRIPTOR.CopyToProto(source)
    fd = descriptor_pb2.FileDescriptorProto(
        name="corral/otlp/rawattrs.proto",
        package=_PACKAGE,
        syntax=source.syntax,
        dependency=[*source.dependency, source.name],
    )
    request = fd.message_type.add(name="Request")
    request.field.add(
        name="resource_logs",
        number=1,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.ResourceLogs",
    )
    for message in source.message_type:
        if message.name not in ("ResourceLogs", "ScopeLogs", "LogRecord"):
            continue
        copy = fd.message_type.add()
        copy.CopyFrom(message)
        for field in copy.field:
            if field.type_name.startswith(_LOGS) and field.type_name[len(_LOGS) :] in ("ScopeLogs", "LogRecord"):
                field.type_name = f".{_PACKAGE}.{field.type_name[len(_LOGS) :]}"
            if message.name == "LogRecord" and field.name == "attributes":
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                field.ClearField("type_name")
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(fd.name)
    except KeyError:
        pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Request"))


RawLogsRequest: Any = _build()


def parse_raw_logs(body: bytes) -> Any:
    """The request with ``log_record.attributes`` as a list of serialized KeyValues."""
    message = RawLogsRequest()
    try:
        message.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"body is not a protobuf ExportLogsServiceRequest: {exc}", field="body") from exc
    return message
