"""Settings from CORRAL_* variables and TOML; bad input names the key and the expected form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corral.entrypoints.config import ConfigError, load_settings


def test_defaults_are_the_embedded_mode() -> None:
    s = load_settings({})
    assert s.database_url is None and s.valkey_url is None and s.s3_endpoint is None
    assert (s.host, s.port) == ("127.0.0.1", 8080)


def test_env_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "corral.toml"
    f.write_text('port = 9000\nhost = "0.0.0.0"\n')
    s = load_settings({"CORRAL_PORT": "9100"}, config_file=f)
    assert (s.host, s.port) == ("0.0.0.0", 9100)


@pytest.mark.parametrize(
    ("env", "key", "expected"),
    [
        ({"CORRAL_PORT": "eighty"}, "CORRAL_PORT", "an integer"),
        ({"CORRAL_PORT": "99999"}, "CORRAL_PORT", "TCP port"),
        ({"CORRAL_LOG_LEVEL": "loud"}, "CORRAL_LOG_LEVEL", "one of"),
        ({"CORRAL_DATABSE_URL": "x"}, "CORRAL_DATABSE_URL", "known setting"),
        ({"CORRAL_PROFILE": "cloud"}, "CORRAL_PROFILE", "one of"),
        # an allkeys-* policy could evict the authz epoch key (stale permissions after a revocation)
        ({"CORRAL_VALKEY_MAXMEMORY_POLICY": "allkeys-lru"}, "CORRAL_VALKEY_MAXMEMORY_POLICY", "volatile-lru"),
        ({"CORRAL_VALKEY_MAXMEMORY_MB": "0"}, "CORRAL_VALKEY_MAXMEMORY_MB", "positive"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.key == key
    assert expected in str(info.value)


def test_unknown_toml_key(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings({}, config_file=f)


def test_cli_exits_2_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "config", "check"],
        env={"CORRAL_PORT": "nope", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "CORRAL_PORT" in lines[0]


def test_secrets_not_in_repr() -> None:
    s = load_settings({"CORRAL_S3_SECRET_KEY": "hunter2", "CORRAL_BOOTSTRAP_ADMIN_PASSWORD": "pw-xyz"})
    assert "hunter2" not in repr(s) and "pw-xyz" not in repr(s)


def test_embedded_valkey_gets_a_bounded_memory_and_a_safe_policy(tmp_path: Path) -> None:
    from corral.adapters.embedded.valkey import EmbeddedValkey

    s = load_settings({"CORRAL_VALKEY_MAXMEMORY_MB": "64", "CORRAL_VALKEY_MAXMEMORY_POLICY": "volatile-ttl"})
    config = EmbeddedValkey(tmp_path, maxmemory_bytes=s.valkey_maxmemory_mb * 1024 * 1024,
                            maxmemory_policy=s.valkey_maxmemory_policy)._config(6379, "pw").splitlines()
    assert f"maxmemory {64 * 1024 * 1024}" in config and "maxmemory-policy volatile-ttl" in config
    default = load_settings({})
    assert (default.valkey_maxmemory_mb, default.valkey_maxmemory_policy) == (128, "volatile-lru")
    with pytest.raises(ValueError, match="volatile-lru"):
        EmbeddedValkey(tmp_path, maxmemory_policy="allkeys-lfu")
