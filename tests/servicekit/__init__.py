"""Throwaway real services for the test run: PostgreSQL, Valkey, SeaweedFS (S3) and an SMTP sink.

Each service starts on random free ports inside a private temporary directory and
is stopped by ``stop()`` (see ``process`` for how children are kept from outliving
the test run). Plain Python, no pytest import: tests/conftest.py turns these into fixtures.
"""

from tests.servicekit.postgres import PostgresServer
from tests.servicekit.process import ServiceError, free_port, free_ports, make_service_dir, spawn, stop_all, terminate
from tests.servicekit.s3 import S3Server
from tests.servicekit.smtp import ReceivedMessage, SmtpSink
from tests.servicekit.valkey import ValkeyServer

__all__ = [
    "PostgresServer",
    "ReceivedMessage",
    "S3Server",
    "ServiceError",
    "SmtpSink",
    "ValkeyServer",
    "free_port",
    "free_ports",
    "make_service_dir",
    "spawn",
    "stop_all",
    "terminate",
]
