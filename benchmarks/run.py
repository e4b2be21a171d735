"""torchzygote benchmark suite.

    python -m benchmarks [--quick] [--compile] [--device cpu|cuda] [--json PATH]
                         [--threads N] [--repeats R] [--cases a,b,...]
    python benchmarks/run.py ...   (the same)

All contestants of a case are measured side by side in one run: per repeat,
each runs a calibrated batch of gradient calls (``time.perf_counter``), in an
order that rotates from repeat to repeat; figures are medians over repeats.
Ratios are torchzygote's time over the other contestant's (below 1: tz faster).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.harness import Config, Result  # noqa: E402


# ------------------------------------------------------------------ formatting

def fmt_time(s) -> str:
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b) -> str:
    if b is None:
        return "-"
    for unit, k in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b:.0f} B"


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}"
    if r >= 10:
        return f"{r:.1f}"
    if r >= 0.01:
        return f"{r:.3f}"
    return f"{r:.2e}"


def machine_info(cfg: Config) -> dict:
    import torchzygote
    from benchmarks import cases
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "logical_cpus": os.cpu_count(), "torch": torch.__version__, "torchzygote": torchzygote.__version__,
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "device": cfg.device, "cuda_available": torch.cuda.is_available()}
    if cfg.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    if cases.tangent is not None:
        try:
            from importlib.metadata import version
            info["tangent"] = version("tangent-ad")
        except Exception:  # noqa: BLE001
            info["tangent"] = "installed"
    else:
        info["tangent"] = cases.TANGENT_ERROR
    for dist in ("jax", "autograd"):  # optional contestants of the scalar cases
        info[dist] = cases._installed(dist) or "not installed"
    return info


def print_machine(info: dict, cfg: Config, out):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("torchzygote benchmarks" + ("  [--quick: smaller problems, fewer repeats; figures are indicative only]"
                                  if cfg.quick else ""))
    p(f"  machine : {info['cpu']} ({info['logical_cpus']} logical CPUs), {info['platform']}")
    p(f"  python {info['python']}, torch {info['torch']}, torchzygote {info['torchzygote']}, "
      f"tangent-ad: {info['tangent']}, jax: {info['jax']}, autograd: {info['autograd']}")
    dev = info["device"] + (f" ({info['gpu']})" if "gpu" in info else "")
    p(f"  device  : {dev};  torch.set_num_threads({info['torch_threads']}), interop threads "
      f"{info['torch_interop_threads']} (the same for every contestant"
      + ("; one thread keeps a small noisy machine's second core free)" if info["torch_threads"] == 1 else ")"))
    p(f"  method  : median over {cfg.repeats} interleaved repeats (contestant order rotates each repeat), "
      f"batches of ~{cfg.target_s * 1e3:.0f} ms timed with time.perf_counter; "
      f"ratio = tz time / contestant time")
    p(f"  torch.compile: " + ("off (use --compile)" if not cfg.compile else
                             "on (forward compiled with inductor, backward by AOTAutograd; setup = compile time)"
                             + ("" if cfg.compile_slow else "; CartPole and PK need --compile-slow")))


def print_result(res: Result, out):
    from benchmarks.harness import ratios
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("")
    p(f"== {res.name}: {res.title}")
    if res.skipped:
        p(f"   skipped: {res.skipped}")
        return
    rs = ratios(res)
    if res.unit == "bytes":
        p(f"   {'contestant':<28} {'iterations':>10} {'peak':>10} {'bytes/iter':>11} {'tz/this':>8}  note")
        base = next((r for r in res.rows if r.name == res.ratio_base), None)
        bpi = lambda r: r.median / r.number if r.median is not None and r.number else None  # noqa: E731
        for r in res.rows:
            if r.error:
                p(f"   {r.name:<28} ERROR {r.error}")
                continue
            ratio = bpi(base) / bpi(r) if base is not None and bpi(base) is not None and bpi(r) else None
            p(f"   {r.name:<28} {r.number:>10.0e} {fmt_bytes(r.median):>10} {bpi(r):>11.1f} "
              f"{fmt_ratio(ratio) if r is not base else '':>8}  {r.note}")
        for name, ex in res.extra.items():
            if isinstance(ex, dict) and "seconds" in ex:
                p(f"   {name:<28} ran in {fmt_time(ex['seconds'])}"
                  + ("" if ex.get("hwm_reset", True) else " (HWM reset refused: lifetime ru_maxrss used)"))
    else:
        p(f"   {'contestant':<30} {'median/call':>12} {'tz/this':>9}  {'':<18} {'setup':>9}  note")
        for r in res.rows:
            if r.error:
                p(f"   {r.name:<30} ERROR {r.error}")
                continue
            ratio = rs.get(r.name)
            speed = ""
            if ratio is not None and r.role == "baseline":
                speed = f"tz {1 / ratio:.1f}x faster" if ratio < 1 else f"tz {ratio:.2f}x slower"
            p(f"   {r.name:<30} {fmt_time(r.median):>12} {fmt_ratio(ratio) if r.name != res.ratio_base else '':>9}  "
              f"{speed:<18} {fmt_time(r.setup_s) if r.setup_s is not None and r.setup_s > 0.05 else '':>9}  "
              f"{r.note}")
    for g in res.goals:
        v = g["value"]
        shown = (fmt_time(v) if g["den"] is None else fmt_ratio(v)) if v is not None else "-"
        p(f"   goal: {g['label']:<40} value {shown:<10} {g['status']}")
    if res.check:
        p(f"   check: {res.check}")
    for n in res.notes:
        p(f"   note: {n}")


def print_summary(results, out):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("")
    p("== summary")
    w = max([14] + [len(r.name) for r in results])
    p(f"   {'case':<{w}} {'goal':<40} {'value':>10}  status")
    for res in results:
        if res.skipped:
            p(f"   {res.name:<{w}} {'(skipped: ' + res.skipped + ')':<40}")
            continue
        errs = [r.name for r in res.rows if r.error]
        for g in res.goals:
            v = g["value"]
            shown = (fmt_time(v) if g["den"] is None else fmt_ratio(v)) if v is not None else "-"
            p(f"   {res.name:<{w}} {g['label']:<40} {shown:>10}  {g['status']}")
        if not res.goals:
            m = res.medians()
            tz_row = next((r for r in res.rows if r.role == "tz"), None)
            base = next((r for r in res.rows if r.role == "baseline"), None)
            if tz_row is None or tz_row.median is None:
                p(f"   {res.name:<{w}} {'(no goal)':<40} {'-':>10}  ERROR")
            elif res.unit == "bytes":
                per = lambda r: r.median / r.number  # noqa: E731
                shown = f"{per(tz_row):.1f} B/it"
                vs = f" vs {base.name} {per(base):.1f} B/it" if base is not None and base.median is not None else ""
                p(f"   {res.name:<{w}} {'(no goal) tz bytes/iteration':<40} {shown:>10}  info{vs}")
            elif base is not None and base.median is not None:
                p(f"   {res.name:<{w}} {'(no goal) tz / ' + base.name:<40} "
                  f"{fmt_ratio(tz_row.median / base.median):>10}  info")
            else:
                p(f"   {res.name:<{w}} {'(no goal) tz':<40} {fmt_time(tz_row.median):>10}  info")
        if errs:
            p(f"   {'':<{w}} errors: {', '.join(errs)}")


# ------------------------------------------------------------------ main

def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fast smoke run: small problems, few repeats (< 20 s)")
    ap.add_argument("--compile", action="store_true", help="add torch.compile contestants (slow to compile)")
    ap.add_argument("--compile-slow", action="store_true",
                    help="with --compile: also compile CartPole and PK (inductor takes many minutes on them); "
                         "run JAX on the NumPy loop programs (XLA compiles their unrolled loops for minutes)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (float32 on CUDA; CPU-only cases are skipped)")
    ap.add_argument("--json", metavar="PATH", help="write every figure (samples included) to PATH")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per case (default 15, --quick 3)")
    ap.add_argument("--cases", default=None, help="comma-separated subset of the cases or groups (see --list)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    return ap.parse_args(argv)


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    args = parse(sys.argv[1:] if argv is None else argv)
    from benchmarks import cases
    if args.list:
        for name, (_, cpu_only) in cases.CASES.items():
            print(f"{name}{'  (CPU only)' if cpu_only else ''}", file=out)
        for name, members in cases.GROUPS.items():
            print(f"{name}  (group: {', '.join(members)})", file=out)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass  # already set (e.g. when called twice in one process)
    cfg = Config(quick=args.quick, device=args.device, compile=args.compile or args.compile_slow,
                 compile_slow=args.compile_slow, threads=args.threads)
    if args.quick:
        cfg.repeats, cfg.target_s, cfg.case_budget_s = 3, 0.002, 1.5
    if args.repeats:
        cfg.repeats = args.repeats
    names = list(cases.CASES) if not args.cases else [c.strip() for c in args.cases.split(",") if c.strip()]
    names = [n for c in names for n in cases.GROUPS.get(c, (c,))]
    unknown = [n for n in names if n not in cases.CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(cases.CASES)}", file=sys.stderr)
        return 2
    info = machine_info(cfg)
    print_machine(info, cfg, out)
    results = []
    t_start = time.perf_counter()
    for name in names:
        build, cpu_only = cases.CASES[name]
        if cpu_only and cfg.device != "cpu":
            res = Result(name, name, skipped=f"CPU-only case (Python floats), not run on {cfg.device}")
        else:
            t0 = time.perf_counter()
            try:
                res = build(cfg)
            except Exception as e:  # noqa: BLE001 - a broken case must not stop the others
                import traceback
                from benchmarks.harness import Row, short_error
                res = Result(name, name)
                res.rows = [Row("torchzygote", role="tz", error=f"case failed: {short_error(e)}",
                                traceback=traceback.format_exc())]
            res.extra["case_seconds"] = time.perf_counter() - t0
        results.append(res)
        print_result(res, out)
        out.flush()
    print_summary(results, out)
    total = time.perf_counter() - t_start
    print(f"\n   total {total:.1f} s", file=out)
    if args.json:
        doc = {"machine": info, "config": {k: getattr(cfg, k) for k in
                                           ("quick", "device", "compile", "compile_slow", "repeats", "target_s",
                                            "case_budget_s", "threads")},
               "argv": sys.argv if argv is None else list(argv), "total_seconds": total,
               "cases": [r.to_json() for r in results]}
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1, default=str)
        print(f"   figures written to {args.json}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
