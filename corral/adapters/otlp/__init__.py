"""OTLP/HTTP wire format: protobuf and JSON bodies in, rows for the telemetry stores out."""

from corral.adapters.otlp.codec import OtlpCodec, decode_request, encode_response, encode_status

__all__ = ["OtlpCodec", "decode_request", "encode_response", "encode_status"]
