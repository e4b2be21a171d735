"""Smoke test of the benchmark suite: ``python -m benchmarks --quick`` runs and prints its table.

No timing is asserted: figures depend on the machine. torchzygote failures inside
a case are reported in the table, not raised, so this only checks the harness.
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _per_test_timeout():
    """Overrides conftest's alarm: the quick run takes ~35 s (importing torch in a
    fresh process included); the subprocess timeouts below bound it instead."""
    yield


def test_quick_run_prints_table(tmp_path):
    out_json = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out_json)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "torchzygote benchmarks" in out
    assert "torch.set_num_threads(" in out
    for case in ("scalar_chain", "pow_loop", "cartpole", "pk_ode", "mlp", "cartpole_example", "pkpd_example",
                 "pkpd_example_dopri5", "module_model", "module_model_cnn", "cold_start", "cold_start_lines",
                 "warm_overhead", "memory", "numpy_logreg", "numpy_rk4", "numpy_kalman"):
        assert f"== {case}:" in out, f"case {case} missing from the output"
    assert "== summary" in out
    assert "tz / primal < 4" in out and "tz / eager <= 0.7" in out
    doc = json.loads(out_json.read_text())
    assert doc["machine"]["torch"]
    names = [c["name"] for c in doc["cases"]]
    assert "scalar_chain" in names and "memory" in names
    chain = next(c for c in doc["cases"] if c["name"] == "scalar_chain")
    primal = next(r for r in chain["rows"] if r["name"] == "primal")
    assert primal["median_s"] is not None and primal["median_s"] > 0
    # the users' programs: each case ran its torchzygote contestant and checked its gradient
    for name in ("cartpole_example", "pkpd_example", "module_model", "module_model_cnn"):
        case = next(c for c in doc["cases"] if c["name"] == name)
        tz_row = next(r for r in case["rows"] if r["name"] == "torchzygote")
        assert tz_row["error"] is None, (name, tz_row["error"])
        assert "MISMATCH" not in (case["check"] or ""), (name, case["check"])
    # the NumPy programs: torchzygote and plain NumPy ran, gradients agree with torch eager's
    # (and HIPS autograd's where installed) and have their arguments' types
    for name in ("numpy_logreg", "numpy_rk4", "numpy_kalman"):
        case = next(c for c in doc["cases"] if c["name"] == name)
        rows = {r["name"]: r for r in case["rows"]}
        assert rows["torchzygote"]["error"] is None and rows["primal"]["error"] is None, (name, case["rows"])
        assert "torchzygote ok" in case["check"] and "tz gradient types ok" in case["check"], (name, case["check"])
        assert "MISMATCH" not in case["check"], (name, case["check"])
    lines = next(c for c in doc["cases"] if c["name"] == "cold_start_lines")
    assert "lines_40" in lines["extra"] and "lines_400" in lines["extra"], lines["rows"]


def test_script_entry_point_lists_cases():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "run.py"), "--list"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scalar_chain" in proc.stdout and "memory" in proc.stdout
    assert "cartpole_example" in proc.stdout and "cold_start_lines" in proc.stdout
    assert "numpy_programs  (group: numpy_logreg, numpy_rk4, numpy_kalman)" in proc.stdout
