"""Where the master key comes from (environment, file, generated data-dir key) and how a bad one fails."""

from __future__ import annotations

import base64
import logging
import os
import stat

import pytest

from corral.entrypoints.cli import main
from corral.entrypoints.config import ConfigError, Settings
from corral.entrypoints.masterkey import MASTER_KEY_FILENAME, load_master_keys


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_development_generates_a_private_key_once_and_says_so(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="corral.secrets")
    settings = Settings(data_dir=tmp_path)
    first = load_master_keys(settings)
    path = tmp_path / MASTER_KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_keys(settings) == first
    assert len(first) == 1 and len(first[0]) == 32
    generated = [r for r in caplog.records if "generated a new master key" in r.getMessage()]
    assert len(generated) == 1
    assert b64(first[0]) not in caplog.text


def test_production_without_key_fails_with_a_clear_message(tmp_path):
    with pytest.raises(ConfigError, match="CORRAL_MASTER_KEY must be set in production"):
        load_master_keys(Settings(data_dir=tmp_path, environment="production"))
    assert not (tmp_path / MASTER_KEY_FILENAME).exists()


def test_env_file_and_previous_keys(tmp_path):
    new, old = os.urandom(32), os.urandom(32)
    assert load_master_keys(Settings(master_key=b64(new), master_key_previous=b64(old))) == [new, old]
    f = tmp_path / "key"
    f.write_text(b64(new) + "\n")
    urlsafe = base64.urlsafe_b64encode(old).decode().rstrip("=")
    assert load_master_keys(Settings(master_key_file=f, master_key_previous=urlsafe)) == [new, old]


@pytest.mark.parametrize("bad", ["not base64 !!", b64(b"short")])
def test_malformed_key_is_refused_without_echoing_it(bad):
    with pytest.raises(ConfigError) as err:
        load_master_keys(Settings(master_key=bad, environment="production"))
    assert "CORRAL_MASTER_KEY" in str(err.value) and bad not in str(err.value)


def test_missing_key_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="CORRAL_MASTER_KEY_FILE"):
        load_master_keys(Settings(master_key_file=tmp_path / "absent"))


def test_cli_generates_a_usable_key(capsys):
    assert main(["secrets", "generate-master-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(base64.b64decode(key)) == 32
