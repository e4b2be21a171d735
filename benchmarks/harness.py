"""Timing machinery: interleaved repeats, medians, goals, error capture.

Every contestant of a case is one zero-argument callable that computes one
full gradient (forward and backward). Per repeat, each contestant runs a
calibrated batch of calls timed with ``time.perf_counter``; the order of the
contestants rotates from one repeat to the next so that slow drifts of a noisy
machine hit every contestant alike. The figure is the median over repeats of
the per-call time.
"""
from __future__ import annotations

import contextlib
import gc
import io
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

# ------------------------------------------------------------------ data


@dataclass
class Contestant:
    name: str
    make: Callable[[], Callable[[], Any]]  # builds the zero-arg gradient call (may raise)
    role: str = "baseline"                # "tz", "primal" or "baseline"
    note: str = ""
    quiet: bool = False                   # silence stdout/stderr while building and warming up


@dataclass
class Goal:
    """``t[num] / t[den] <op> threshold`` (``den`` None: ``t[num] <op> threshold`` in seconds)."""
    num: str
    den: Optional[str]
    op: str
    threshold: float
    label: str

    def evaluate(self, medians: Dict[str, float]) -> dict:
        a = medians.get(self.num)
        b = medians.get(self.den) if self.den else 1.0
        out = {"label": self.label, "num": self.num, "den": self.den, "op": self.op,
               "threshold": self.threshold, "value": None, "status": "N/A"}
        if a is None or b is None or b == 0:
            missing = self.num if a is None else self.den
            out["status"] = f"N/A ({missing} failed)"
            return out
        v = a / b
        out["value"] = v
        ok = {"<": v < self.threshold, "<=": v <= self.threshold,
              ">": v > self.threshold, ">=": v >= self.threshold}[self.op]
        out["status"] = "PASS" if ok else "MISS"
        return out


@dataclass
class Row:
    name: str
    role: str = "baseline"
    median: Optional[float] = None       # seconds per gradient call
    samples: List[float] = field(default_factory=list)
    number: int = 0                      # calls per sample
    setup_s: Optional[float] = None      # build + first call (compile time for torch.compile)
    error: Optional[str] = None
    traceback: Optional[str] = None
    note: str = ""
    value: Any = None                    # the result of one call (for gradient checks)

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role, "median_s": self.median, "samples_s": self.samples,
                "calls_per_sample": self.number, "setup_s": self.setup_s, "error": self.error,
                "traceback": self.traceback, "note": self.note}


@dataclass
class Result:
    name: str
    title: str
    rows: List[Row] = field(default_factory=list)
    goals: List[dict] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    check: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)   # case-specific figures
    skipped: Optional[str] = None
    ratio_base: str = "torchzygote"   # the ratio column is t[ratio_base] / t[row]
    unit: str = "time"                # "time" or "bytes"

    def medians(self) -> Dict[str, float]:
        return {r.name: r.median for r in self.rows if r.median is not None}

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "rows": [r.to_json() for r in self.rows],
                "goals": self.goals, "notes": self.notes, "check": self.check, "extra": self.extra,
                "skipped": self.skipped, "ratio_base": self.ratio_base, "unit": self.unit,
                "ratios": ratios(self)}


def ratios(res: Result) -> Dict[str, float]:
    m = res.medians()
    base = m.get(res.ratio_base)
    if base is None:
        return {}
    return {k: base / v for k, v in m.items() if k != res.ratio_base and v}


def short_error(e: BaseException) -> str:
    msg = [ln.strip() for ln in str(e).strip().splitlines()]
    msg = [ln for ln in msg if any(ch.isalnum() for ch in ln)]  # skip banner lines (=====)
    first = msg[0] if msg else ""
    if len(msg) > 1 and len(first) < 25:  # a title line ("Tangent Error"): add the next one
        first = f"{first}: {msg[1]}"
    if len(first) > 160:
        first = first[:157] + "..."
    return f"{type(e).__name__}: {first}"


# ------------------------------------------------------------------ timing


@dataclass
class Config:
    quick: bool = False
    device: str = "cpu"
    compile: bool = False
    compile_slow: bool = False  # also compile the cases whose inductor compile takes minutes
    repeats: int = 15
    target_s: float = 0.02      # aim for samples of about this long
    case_budget_s: float = 12.0  # cap on the timed part of one case
    threads: int = 1
    verbose: bool = False

    def sync(self):
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.synchronize()


def _quiet(flag: bool):
    if not flag:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def prepare(cfg: Config, contestants: List[Contestant]):
    """Build every contestant and make its first calls; failures become rows with an error."""
    rows, fns = [], {}
    for c in contestants:
        row = Row(c.name, c.role, note=c.note)
        rows.append(row)
        t0 = time.perf_counter()
        try:
            with _quiet(c.quiet):
                fn = c.make()
                row.value = fn()
                cfg.sync()
                row.setup_s = time.perf_counter() - t0
                fn()   # a second warm-up call (torch.compile may recompile on it)
                cfg.sync()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            row.error = short_error(e)
            row.traceback = traceback.format_exc(limit=12)
            continue
        fns[c.name] = fn
    return rows, fns


def _time_batch(fn, number, sync) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    sync()
    return (time.perf_counter() - t0) / number


def measure(cfg: Config, rows: List[Row], fns: Dict[str, Callable]) -> List[str]:
    """Interleaved timing of the prepared contestants; fills ``row.median``."""
    notes = []
    live = [r for r in rows if r.name in fns]
    if not live:
        return notes
    # calibration: a few calls each gives the per-call time
    per_call = {}
    for r in live:
        fn = fns[r.name]
        n, t = 1, _time_batch(fn, 1, cfg.sync)
        while t * n < cfg.target_s / 4 and n < 10**6:
            n *= 4
            t = _time_batch(fn, n, cfg.sync)
        per_call[r.name] = t
        r.number = max(1, int(round(cfg.target_s / max(t, 1e-9))))
    # cap the whole case: shrink the repeat count (never below 3) if one round is long
    round_s = sum(per_call[r.name] * r.number for r in live)
    repeats = cfg.repeats
    if round_s * repeats > cfg.case_budget_s:
        repeats = max(3, int(cfg.case_budget_s / max(round_s, 1e-9)))
        if repeats < cfg.repeats:
            notes.append(f"{repeats} repeats (capped by the case budget of {cfg.case_budget_s:.0f} s)")
    k = len(live)
    for rep in range(repeats):
        gc.collect()
        for j in range(k):
            r = live[(rep + j) % k]
            try:
                r.samples.append(_time_batch(fns[r.name], r.number, cfg.sync))
            except Exception as e:  # noqa: BLE001
                r.error = short_error(e)
                r.traceback = traceback.format_exc(limit=12)
                fns.pop(r.name, None)
        live = [r for r in live if r.name in fns]
        k = len(live)
        if not k:
            break
    for r in rows:
        if r.samples and r.error is None:
            r.median = statistics.median(r.samples)
    return notes


def timed_case(cfg: Config, name: str, title: str, contestants: List[Contestant], goals: List[Goal],
               check: Optional[Callable[[Dict[str, Row]], str]] = None, notes=()) -> Result:
    res = Result(name, title, notes=list(notes))
    rows, fns = prepare(cfg, contestants)
    res.rows = rows
    if check is not None:
        try:
            res.check = check({r.name: r for r in rows if r.error is None})
        except Exception as e:  # noqa: BLE001
            res.check = f"check failed: {short_error(e)}"
    res.notes += measure(cfg, rows, fns)
    m = res.medians()
    res.goals = [g.evaluate(m) for g in goals]
    return res
