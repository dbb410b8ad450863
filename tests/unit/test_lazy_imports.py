"""An idle server does not hold what only the cold tier needs: pyarrow and DuckDB load on first use."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.corral_process import ROOT

_PROBE = """
import sys
import corral.entrypoints.cli
import corral.entrypoints.bootstrap  # imports every domain's wiring module, as `corral serve` does
import corral.adapters.coldtier, corral.adapters.postgres.observe
import corral.entrypoints.observe_wiring, corral.entrypoints.web.app
print(sorted(m for m in ("pyarrow", "duckdb") if m in sys.modules))
from corral.adapters.coldtier import encode_parquet
encode_parquet("logs", [])
print(sorted(m for m in ("pyarrow", "duckdb") if m in sys.modules))
"""


def test_pyarrow_and_duckdb_are_imported_only_when_the_cold_tier_works() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    before, after = proc.stdout.splitlines()
    assert before == "[]"  # nothing at start
    assert after == "['pyarrow']"  # the first Parquet file loads pyarrow; DuckDB waits for the first cold query
