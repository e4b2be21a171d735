"""Memory measurements in a fresh process:
``python -m benchmarks.memprobe THREADS MODE:N [MODE:N ...]``.

Prints one JSON line per mode: ``peak_bytes`` and ``seconds`` of the gradient
of the memory loop (``benchmarks.programs.mem_loop_*``) over N iterations.
The full suite runs each mode in its own process; ``--quick`` runs them all in
one (RSS figures of later modes may then be low: freed memory is reused).

RSS modes reset the kernel's resident-set high-water mark (``/proc/self/clear_refs``)
just before the call and report its growth over the level before the call; where
the reset is refused, the process-lifetime ``ru_maxrss`` is used instead (an
upper bound, flagged in the output). tracemalloc modes report the Python heap
peak (this sees Python floats and closures, not torch's C++ allocations).
"""
import gc
import json
import resource
import sys
import time
import traceback


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os
    return pages * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def main(argv):
    threads = int(argv[0])
    import torch
    torch.set_num_threads(threads)
    for spec in argv[1:]:
        mode, n = spec.split(":")
        try:
            out = probe(mode, int(n))
        except Exception as e:  # noqa: BLE001
            out = {"mode": mode, "n": int(n), "error": f"{type(e).__name__}: {e}"[:300],
                   "traceback": traceback.format_exc()[-4000:]}
        print(json.dumps(out), flush=True)


def probe(mode, n):
    import torch
    import torchzygote as tz
    from benchmarks import programs as P

    if mode.startswith("tz"):
        def run(k):
            return tz.gradient(P.mem_loop_float, 0.5, k)
    elif mode.startswith("torch"):
        x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)

        def run(k):
            return torch.autograd.grad(P.mem_loop_tensor(x, k), x)
    elif mode.startswith("primal"):
        def run(k):
            return P.mem_loop_float(0.5, k)
    else:
        raise SystemExit(f"unknown mode {mode}")

    run(100)  # warm: transform cached, lazy imports done
    run(100)
    gc.collect()
    out = {"mode": mode, "n": n}
    if mode.endswith("tracemalloc"):
        import tracemalloc
        tracemalloc.start()
        t0 = time.perf_counter()
        g = run(n)
        out["seconds"] = time.perf_counter() - t0
        out["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        base = _rss_now()
        exact = _reset_hwm()
        t0 = time.perf_counter()
        g = run(n)
        out["seconds"] = time.perf_counter() - t0
        out["peak_bytes"] = max(0, _hwm() - base)
        out["rss_before_bytes"] = base
        out["hwm_reset"] = exact
    out["bytes_per_iter"] = out["peak_bytes"] / n
    out["result"] = float(g[0]) if isinstance(g, tuple) else float(g)
    del g
    gc.collect()
    return out


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)
