"""Program fuzzer for torchzygote (issue 10, "Trust: never silently wrong").

A seeded generator writes random Python programs to real files (imported with
importlib, so ``inspect.getsource`` works), and each program's torchzygote
derivatives are checked against central differences (two step sizes; a point
where the two disagree is non-smooth and skipped) and against torch autograd
wherever torch accepts the same program on tensors.

    python -m tests.sweeps.fuzz --n 20000 --seed 0 [--order 2] [--kind scalar|tensor|numpy|all]
                                [--jobs 1] [--out fuzz_failures] [--start 0] [--mode reverse|forward|both]

Scalar programs take 1-3 floats and use arithmetic and ``math`` on safe domains,
``if``/``while``/``for`` with data-dependent conditions, ``break``, ``continue``,
early ``return``, tuples, lists and dicts with mutation, closures, nested
``def``s, lambdas, helpers calling each other, bounded recursion, and ``math``
imported at module level, locally (a closure cell of nested functions), under
an alias or by ``from math import``. Their torch twin is the same source with
``math`` replaced by ``torch`` (run on 0-d float64 tensors).

Tensor programs take small float64 tensors (and sometimes a float): broadcasting,
indexing, in-place writes (``y[0] = ...``, ``y += ...``, ``y.mul_(...)``),
``torch.stack``, lists and dicts of tensors, matmuls with fixed matrices and
``nn.Linear``/``nn.Sequential`` modules built with a fixed seed.

NumPy programs (``--kind numpy``, one in eight of ``all``; ``fuzz_numpy.py``) take
float64 arrays, a float and an ``np.float64``, and are checked against central
differences and for the gradients' types and shapes.

Orders: 1 = gradient (and, for tensor programs, ``jacobian`` of the program's
vector-valued twin); 2 = ``derivative(derivative(f))`` (one argument) or a
mixed second derivative through nested ``gradient`` (several), ``hessian`` for
tensor programs; with ``--order 2`` one in ``--high-every`` one-argument scalar
programs is also checked at orders 3 and 4.

Modes (``--mode``): ``reverse`` (the checks above), ``forward`` (``fuzz_forward.py``: ``tz.jvp``
along random directions against central differences, the reverse gradient and
``torch.func.jvp``; at order 2 ``tz.hvp`` against central differences of the reverse gradient;
verdicts keyed ``f1``, ``f2``) or ``both``.

Classes: ok, skipped (the plain program raises / is non-finite / the point is
non-smooth), mismatch (a wrong number), clear (a ``torchzygote.errors`` error),
internal (any other exception from torchzygote, or a timeout).
"""
import argparse
import importlib.util
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict

import numpy as np
import torch

import torchzygote as tz
from torchzygote.errors import TorchZygoteError

try:
    from . import fuzz_forward, fuzz_numpy
    from .shaped import ShapedGen
except ImportError:   # run as tests/sweeps/fuzz.py or imported as sweeps.fuzz
    import fuzz_forward
    import fuzz_numpy
    from shaped import ShapedGen

CLASSES = ("ok", "skipped", "mismatch", "clear", "timeout", "internal")
H1, H2 = 1e-5, 1e-6
TIMEOUT_S = 30


# ============================================================ generator helpers


class Scope:
    """What a block may read and write: floats (name -> writable), lists
    (name -> known minimum length), dicts (name -> keys known present), tuples
    (name -> length), callables (name -> arity), loop ints."""

    def __init__(self):
        self.floats = {}
        self.lists = {}
        self.dicts = {}
        self.tuples = {}
        self.calls = {}
        self.ints = []
        self.iterating = set()
        self.outer = []
        self.objs = set()
        self.globals = set()

    def child(self, readonly=False):
        c = Scope()
        c.outer = list(self.outer)
        c.objs = set(self.objs)
        c.globals = set(self.globals)
        c.floats = {k: (v and not readonly) for k, v in self.floats.items()}
        c.lists = dict(self.lists)
        c.dicts = {k: set(v) for k, v in self.dicts.items()}
        c.tuples = dict(self.tuples)
        c.calls = dict(self.calls)
        c.ints = list(self.ints)
        c.iterating = set(self.iterating)
        return c


MATH_MODES = ("top", "local", "alias", "from", "top")
FROM_NAMES = ("sin", "cos", "tanh", "exp", "log", "sqrt", "atan")


class ScalarGen:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.n = 0
        self.mode = rng.choice(MATH_MODES)
        self.features = set()
        self.helpers = {}  # module-level helper name -> arity

    def fresh(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def m(self, fn):
        if self.mode == "from" and fn in FROM_NAMES:
            return fn
        if self.mode == "alias":
            return f"m.{fn}"
        return f"math.{fn}"

    def const(self):
        r = self.rng
        return r.choice(["0.5", "1.5", "2.0", "0.3", "-0.7", "1.0", "0.25", "3.0", "-1.2", "2"])

    def leaf(self, sc):
        r = self.rng
        u = r.random()
        if u < 0.12 and sc.lists:
            name, n = r.choice(sorted(sc.lists.items()))
            if n > 0:
                self.features.add("list-read")
                return f"{name}[{r.choice([0, n - 1, -1])}]"
        if u < 0.22 and sc.dicts:
            name, keys = r.choice(sorted(sc.dicts.items()))
            if keys:
                self.features.add("dict-read")
                return f'{name}["{r.choice(sorted(keys))}"]'
        if u < 0.28 and sc.tuples:
            name, n = r.choice(sorted(sc.tuples.items()))
            self.features.add("tuple-read")
            return f"{name}[{r.randrange(n)}]"
        if u < 0.31 and sc.objs:
            return f"{r.choice(sorted(sc.objs))}.v"
        if u < 0.33 and sc.globals:
            return f'G["{r.choice(sorted(sc.globals))}"]'
        if u < 0.38:
            return self.const()
        return r.choice(sorted(sc.floats))

    def bounded(self, sc, d):
        e = self.expr(sc, d)
        return self.rng.choice([f"{self.m('tanh')}({e})", f"{self.m('sin')}({e})", f"{self.m('cos')}({e})"])

    def varexpr(self, sc, d):
        """An expression that reads at least one variable (conditions on data)."""
        for _ in range(8):
            e = self.expr(sc, d)
            if any(re.search(rf"\b{v}\b", e) for v in sc.floats):
                return e
        return self.rng.choice(sorted(sc.floats))

    def cond(self, sc, d=1):
        r = self.rng
        a = self.varexpr(sc, d)
        u = r.random()
        if u < 0.6:
            return f"{a} {r.choice(['>', '<', '>=', '<='])} {r.choice(['0.0', '0.5', '-0.3', '1.0'])}"
        if u < 0.85:
            return f"{a} {r.choice(['>', '<'])} {self.expr(sc, d)}"
        return f"{a} > 0.0 and {self.expr(sc, d)} < 1.0"

    def expr(self, sc, d):
        r = self.rng
        if d <= 0 or r.random() < 0.25:
            return self.leaf(sc)
        u = r.random()
        e = lambda: self.expr(sc, d - 1)  # noqa: E731
        if u < 0.30:
            fn = r.choice(["sin", "cos", "tanh", "atan", "exp", "log", "sqrt", "log1p", "erf", "div", "sinh", "expm1"])
            if fn == "exp":
                return f"{self.m('exp')}({self.bounded(sc, d - 1)})"
            if fn in ("sinh", "expm1"):
                return f"{self.m(fn)}({self.bounded(sc, d - 1)})"
            if fn in ("log", "sqrt"):
                a = e()
                return f"{self.m(fn)}(1.0 + {a} * {a})"
            if fn == "log1p":
                a = e()
                return f"{self.m('log1p')}({a} * {a})"
            if fn == "div":
                a, b = e(), e()
                return f"({a}) / (1.0 + ({b}) ** 2)"
            return f"{self.m(fn)}({e()})"
        if u < 0.62:
            op = r.choice(["+", "-", "*", "+", "*", "-"])
            return f"({e()} {op} {e()})"
        if u < 0.68:
            return f"{self.const()} * {e()}"
        if u < 0.73:
            return f"({e()}) ** {r.choice(['2', '3', '2.0'])}"
        if u < 0.77:
            self.features.add("minmax/abs")
            k = r.random()
            if k < 0.4:
                return f"max({e()}, {e()})"
            if k < 0.8:
                return f"min({e()}, {e()})"
            return f"abs({e()})"
        if u < 0.83:
            self.features.add("ifexp")
            return f"({e()} if {self.cond(sc, d - 1)} else {e()})"
        calls = sorted((k, a) for k, a in sc.calls.items() if a != -4)
        if u < 0.93 and calls:
            name, arity = r.choice(calls)
            if arity == -1:  # recursion helper (x, n)
                return f"{name}({e()}, {r.randint(0, 3)})"
            if arity == -3:  # default / keyword argument
                k = r.random()
                return f"hd({e()})" if k < 0.4 else (f"hd({e()}, c={e()})" if k < 0.7 else f"hd(c={e()}, a={e()})")
            if arity == -2:  # list of functions
                self.features.add("dispatch")
                return f"{name}[{r.randrange(2)}]({e()})"
            return f"{name}({', '.join(e() for _ in range(arity))})"
        if sc.ints:
            self.features.add("int-mix")
            return f"({e()} * {r.choice(sc.ints)})"
        return f"({e()} + {e()})"

    # ---- statements

    def block(self, sc, ind, nstmt, depth, in_loop, ret_ok):
        lines = []
        for _ in range(nstmt):
            lines += self.stmt(sc, ind, depth, in_loop, ret_ok)
        return lines or [ind + "pass"]

    def writable(self, sc):
        return sorted(k for k, v in sc.floats.items() if v)

    def stmt(self, sc, ind, depth, in_loop, ret_ok):
        r = self.rng
        if (sc.lists or sc.dicts) and r.random() < 0.2:
            return self.container_stmt(sc, ind, mutate=True)
        if r.random() < 0.22:
            out = self.extra_stmt(sc, ind, depth, in_loop)
            if out:
                return out
        u = r.random()
        ed = r.randint(1, 3)
        w = self.writable(sc)
        if u < 0.16 or (not w and u < 0.4):
            v = self.fresh("v")
            line = f"{ind}{v} = {self.expr(sc, ed)}"
            sc.floats[v] = True
            return [line]
        if u < 0.26 and w:
            v = r.choice(w)
            k = r.random()
            if k < 0.3:
                return [f"{ind}{v} += {self.expr(sc, ed)}"]
            if k < 0.45:
                return [f"{ind}{v} -= 0.5 * {self.bounded(sc, ed - 1)}"]
            if k < 0.65:
                return [f"{ind}{v} *= {self.bounded(sc, ed - 1)}"]
            if k < 0.75:
                return [f"{ind}{v} /= 1.5 + {self.bounded(sc, ed - 1)}"]
            return [f"{ind}{v} = 0.5 * {v} + {self.expr(sc, ed)}"]
        if depth > 0 and u < 0.38:
            self.features.add("if")
            out = [f"{ind}if {self.cond(sc, r.randint(0, 2))}:"]
            out += self.block(sc.child(), ind + "    ", r.randint(1, 3), depth - 1, in_loop, ret_ok)
            k = r.random()
            if k < 0.3:
                self.features.add("elif")
                out.append(f"{ind}elif {self.cond(sc, 1)}:")
                out += self.block(sc.child(), ind + "    ", r.randint(1, 2), depth - 1, in_loop, ret_ok)
            if k < 0.75:
                out.append(f"{ind}else:")
                out += self.block(sc.child(), ind + "    ", r.randint(1, 2), depth - 1, in_loop, ret_ok)
            return out
        if depth > 0 and u < 0.47:
            c = sc.child()
            k = r.random()
            if k < 0.55 or not (set(sc.lists) - sc.iterating):
                self.features.add("for")
                i = self.fresh("i")
                out = [f"{ind}for {i} in range({r.choice(['3', '2', '4', '1', '0', '1, 4'])}):"]
                c.ints.append(i)
            else:
                self.features.add("for-list")
                L = r.choice(sorted(set(sc.lists) - sc.iterating))
                it = self.fresh("it")
                out = [f"{ind}for {it} in {L}:"]
                c.iterating.add(L)
                c.floats[it] = True
            out += self.block(c, ind + "    ", r.randint(1, 3), depth - 1, True, ret_ok)
            return out
        if depth > 0 and u < 0.53:
            self.features.add("while")
            k = self.fresh("k")
            out = [f"{ind}{k} = 0", f"{ind}while {k} < {r.randint(1, 5)} and {self.cond(sc, 1)}:", f"{ind}    {k} += 1"]
            out += self.block(sc.child(), ind + "    ", r.randint(1, 3), depth - 1, True, ret_ok)
            return out
        if in_loop and u < 0.58:
            kw = r.choice(["break", "continue"])
            self.features.add(kw)
            return [f"{ind}if {self.cond(sc, 1)}:", f"{ind}    {kw}"]
        if ret_ok and u < 0.61:
            self.features.add("early-return")
            return [f"{ind}if {self.cond(sc, 1)}:", f"{ind}    return {self.expr(sc, 2)}"]
        if u < 0.72:
            return self.container_stmt(sc, ind)
        if u < 0.80:
            return self.def_stmt(sc, ind, depth)
        if u < 0.85:
            self.features.add("lambda")
            lam = self.fresh("lam")
            c = sc.child(readonly=True)
            p = self.fresh("u")
            c.floats[p] = True
            sc.calls[lam] = 1
            return [f"{ind}{lam} = lambda {p}: {self.expr(c, 2)}"]
        if u < 0.88 and self.mode != "from":
            self.features.add("dispatch")
            fs = self.fresh("fs")
            sc.calls[fs] = -2
            a, b = r.sample(["sin", "cos", "tanh", "atan"], 2)
            return [f"{ind}{fs} = [{self.m(a)}, {self.m(b)}]"]
        v = self.fresh("v")
        line = f"{ind}{v} = {self.expr(sc, ed)}"
        sc.floats[v] = True
        return [line]

    def extra_stmt(self, sc, ind, depth, in_loop):
        """Less common constructs: aliasing, nonlocal, comprehensions, enumerate/zip,
        pop/extend/insert, dict iteration, get, globals, objects, while True, x ** y."""
        r = self.rng
        k = r.randrange(14)
        lists = sorted(set(sc.lists) - sc.iterating)
        ed = r.randint(1, 2)
        if k == 0 and lists:
            self.features.add("list-alias")
            L, A = r.choice(lists), self.fresh("A")
            out = [f"{ind}{A} = {L}"]
            j = r.randrange(sc.lists[L]) if sc.lists[L] else None
            if j is not None and r.random() < 0.5:
                out.append(f"{ind}{A}[{j}] = {self.expr(sc, ed)}")
            else:
                out.append(f"{ind}{A}.append({self.expr(sc, ed)})")
                sc.lists[L] += 1
            return out
        if k == 1 and False:
            self.features.add("nonlocal")
            v = r.choice(sc.outer)
            return [f"{ind}nonlocal {v}", f"{ind}{v} = {v} + {self.bounded(sc, ed)}"]
        if k == 2 and sc.lists:
            self.features.add("comprehension")
            L = r.choice(sorted(sc.lists))
            it = self.fresh("c")
            c = sc.child(readonly=True)
            c.floats[it] = True
            body = self.expr(c, 2)
            if r.random() < 0.5:
                v = self.fresh("v")
                sc.floats[v] = True
                filt = f" if {it} > {r.choice(['0.0', '-0.5'])}" if r.random() < 0.3 else ""
                return [f"{ind}{v} = sum([{body} for {it} in {L}{filt}])"]
            N = self.fresh("L")
            sc.lists[N] = sc.lists[L]
            return [f"{ind}{N} = [{body} for {it} in {L}]"]
        if k == 3 and lists and depth > 0:
            L = r.choice(lists)
            c = sc.child()
            j, it = self.fresh("j"), self.fresh("it")
            c.ints.append(j)
            c.floats[it] = True
            c.iterating.add(L)
            if r.random() < 0.5:
                self.features.add("enumerate")
                head = f"{ind}for {j}, {it} in enumerate({L}):"
            else:
                self.features.add("zip")
                L2 = r.choice(sorted(sc.lists))
                c.iterating.add(L2)
                it2 = self.fresh("it")
                c.floats[it2] = True
                c.ints.remove(j)
                head = f"{ind}for {it}, {it2} in zip({L}, {L2}):"
            return [head] + self.block(c, ind + "    ", r.randint(1, 2), depth - 1, True, False)
        if k == 4 and lists:
            L = r.choice(lists)
            kk = r.random()
            if kk < 0.35 and sc.lists[L] > 0:
                self.features.add("pop")
                v = self.fresh("v")
                line = f"{ind}{v} = {L}.pop({r.choice(['', '0'])})"
                sc.lists[L] -= 1
                sc.floats[v] = True
                return [line]
            if kk < 0.7:
                n = r.randint(1, 2)
                items = ', '.join(self.expr(sc, ed) for _ in range(n))
                if kk < 0.525:
                    self.features.add("extend")
                    line = f"{ind}{L}.extend([{items}])"
                else:
                    self.features.add("list-iadd")
                    line = f"{ind}{L} += [{items}]"
                sc.lists[L] += n
                return [line]
            self.features.add("insert")
            line = f"{ind}{L}.insert(0, {self.expr(sc, ed)})"
            sc.lists[L] += 1
            return [line]
        if k == 5 and sc.dicts and depth > 0:
            self.features.add("dict-iter")
            D = r.choice(sorted(sc.dicts))
            acc, key = self.fresh("v"), self.fresh("key")
            line = [f"{ind}{acc} = 0.0", f"{ind}for {key} in {D}:",
                    f"{ind}    {acc} = {acc} + {self.m('sin')}({D}[{key}]) * {self.expr(sc, 1)}"]
            sc.floats[acc] = True
            return line
        if k == 6 and sc.dicts:
            self.features.add("dict-get")
            D = r.choice(sorted(sc.dicts))
            v = self.fresh("v")
            sc.floats[v] = True
            return [f'{ind}{v} = {D}.get("{r.choice(["a", "b", "z"])}", {self.expr(sc, ed)})']
        if k == 7:
            self.features.add("global-dict")
            key = r.choice(["p", "q"])
            line = f'{ind}G["{key}"] = {self.expr(sc, ed)}'
            sc.globals.add(key)
            return [line]
        if k == 8:
            self.features.add("object")
            o = self.fresh("o")
            line = [f"{ind}{o} = Acc({self.expr(sc, ed)})"]
            if r.random() < 0.6:
                line.append(f"{ind}{o}.add({self.expr(sc, ed)})")
            if r.random() < 0.4:
                line.append(f"{ind}{o}.v = {o}.v * {self.bounded(sc, 1)}")
            sc.objs.add(o)
            return line
        if k == 9 and depth > 0:
            self.features.add("while-true")
            kk = self.fresh("k")
            # the exit test comes first: a 'continue' in the body cannot skip it
            out = [f"{ind}{kk} = 0", f"{ind}while True:", f"{ind}    {kk} += 1",
                   f"{ind}    if {kk} > {r.randint(1, 4)} or {self.cond(sc, 1)}:", f"{ind}        break"]
            out += self.block(sc.child(), ind + "    ", r.randint(1, 2), depth - 1, True, False)
            return out
        if k == 10:
            self.features.add("pow/atan2/hypot")
            v = self.fresh("v")
            a, b = self.expr(sc, 1), self.expr(sc, 1)
            e = r.choice([f"(1.0 + {a} * {a}) ** ({self.bounded(sc, 1)})",
                          f"{self.m('pow')}(1.0 + {a} * {a}, {b})" if self.mode != "from" else f"math.pow(1.0 + {a} * {a}, 0.5 * {b})",
                          f"math.atan2({a}, 1.5 + {self.m('cos')}({b}))" if self.mode != "alias" else f"m.atan2({a}, 2.0 + {b} * {b})",
                          f"math.hypot({a}, 1.0 + {b} * {b})" if self.mode != "alias" else f"m.hypot(1.0 + {a} * {a}, {b})"])
            sc.floats[v] = True
            return [f"{ind}{v} = {e}"]
        if k == 11 and sc.lists:
            self.features.add("nested-list")
            L = r.choice(sorted(sc.lists))
            N = self.fresh("N")
            v = self.fresh("v")
            sc.floats[v] = True
            return [f"{ind}{N} = [{L}, [{self.expr(sc, ed)}]]", f"{ind}{N}[1][0] += {self.expr(sc, ed)}",
                    f"{ind}{v} = {N}[1][0] + sum({N}[0])"]
        if k == 12:
            self.features.add("and/or-value")
            v = self.fresh("v")
            sc.floats[v] = True
            return [f"{ind}{v} = ({self.expr(sc, ed)} and {self.expr(sc, ed)}) or {self.expr(sc, ed)}"]
        if k == 13 and sc.calls.get("ht") == -4:
            self.features.add("tuple-return")
            a, b = self.fresh("v"), self.fresh("v")
            sc.floats[a] = sc.floats[b] = True
            return [f"{ind}{a}, {b} = ht({self.expr(sc, ed)})"]
        return None

    def container_stmt(self, sc, ind, mutate=False):
        r = self.rng
        u = r.uniform(0.2, 0.85) if mutate else r.random()
        ed = r.randint(1, 2)
        lists = sorted(set(sc.lists) - sc.iterating)
        if u < 0.5 and not lists and sc.lists and r.random() < 0.5:
            L = r.choice(sorted(sc.lists))
            if sc.lists[L]:
                self.features.add("list-setitem")
                return [f"{ind}{L}[{r.randrange(sc.lists[L])}] = {self.expr(sc, ed)}"]
        if u < 0.2 or (u < 0.5 and not lists):
            self.features.add("list")
            L = self.fresh("L")
            n = r.randint(0, 3)
            line = f"{ind}{L} = [{', '.join(self.expr(sc, ed) for _ in range(n))}]"
            sc.lists[L] = n
            return [line]
        if u < 0.5:
            L = r.choice(lists)
            n = sc.lists[L]
            k = r.random()
            if k < 0.4 or n == 0:
                self.features.add("append")
                line = f"{ind}{L}.append({self.expr(sc, ed)})"
                sc.lists[L] = n + 1
                return [line]
            j = r.randrange(n)
            if k < 0.7:
                self.features.add("list-setitem")
                return [f"{ind}{L}[{j}] = {self.expr(sc, ed)}"]
            if k < 0.85:
                self.features.add("list-iadd")
                return [f"{ind}{L}[{j}] += {self.expr(sc, ed)}"]
            v = self.fresh("v")
            sc.floats[v] = True
            self.features.add("list-sum")
            return [f"{ind}{v} = sum({L})"]
        if u < 0.65 or (u < 0.85 and not sc.dicts):
            self.features.add("dict")
            D = self.fresh("D")
            keys = r.sample(["a", "b", "c"], r.randint(1, 2))
            line = f"{ind}{D} = {{{', '.join(f'{chr(34)}{k}{chr(34)}: {self.expr(sc, ed)}' for k in keys)}}}"
            sc.dicts[D] = set(keys)
            return [line]
        if u < 0.85:
            D = r.choice(sorted(sc.dicts))
            k = r.choice(["a", "b", "c", "d"])
            if k in sc.dicts[D] and r.random() < 0.5:
                self.features.add("dict-iadd")
                return [f'{ind}{D}["{k}"] += {self.expr(sc, ed)}']
            self.features.add("dict-setitem")
            line = f'{ind}{D}["{k}"] = {self.expr(sc, ed)}'
            sc.dicts[D].add(k)
            return [line]
        self.features.add("tuple")
        T = self.fresh("T")
        n = r.randint(2, 3)
        out = [f"{ind}{T} = ({', '.join(self.expr(sc, ed) for _ in range(n))})"]
        sc.tuples[T] = n
        if r.random() < 0.5:
            names = [self.fresh("v") for _ in range(n)]
            out.append(f"{ind}{', '.join(names)} = {T}")
            for nm in names:
                sc.floats[nm] = True
        return out

    def def_stmt(self, sc, ind, depth):
        r = self.rng
        self.features.add("nested-def")
        g = self.fresh("g")
        arity = r.randint(1, 2)
        c = sc.child(readonly=True)
        c.ints = []
        c.iterating = set(sc.lists)  # do not grow outer lists we may be iterating
        c.outer = [v for v in self.writable(sc) if not v.startswith(("it", "c"))]
        ps = [self.fresh("u") for _ in range(arity)]
        for p in ps:
            c.floats[p] = True
        out = [f"{ind}def {g}({', '.join(ps)}):"]
        if r.random() < 0.15 and self.mode in ("top", "local"):
            self.features.add("nested-local-import")
            out.append(f"{ind}    import math")
        if c.outer and r.random() < 0.2:
            self.features.add("nonlocal")
            v = r.choice(c.outer)
            out += [f"{ind}    nonlocal {v}", f"{ind}    {v} = {v} + {self.bounded(c, 1)}"]
        out += self.block(c, ind + "    ", r.randint(0, 2), min(depth, 1), False, True)
        out.append(f"{ind}    return {self.expr(c, 2)}")
        sc.calls[g] = arity
        return out

    # ---- module

    def imports(self, ind, top):
        if self.mode == "local" and not top:
            return [f"{ind}import math"]
        if top and self.mode in ("top",):
            return ["import math"]
        if top and self.mode == "alias":
            return ["import math as m", "import math"]
        if top and self.mode == "from":
            return [f"from math import {', '.join(FROM_NAMES)}", "import math"]
        return []

    def module(self, nargs):
        r = self.rng
        lines = self.imports("", True)
        if self.mode == "local":
            self.features.add("local-import")
        lines += ["", "G = {}", "", "", "class Acc:", "    def __init__(self, v):", "        self.v = v", "",
                  "    def add(self, u):", "        self.v = self.v + u", "        return self", ""]
        calls = {}
        if r.random() < 0.3:
            sc = Scope()
            sc.floats = {"a": True}
            lines.append("def ht(a):")
            lines += self.imports("    ", False)
            lines.append(f"    return ({self.expr(sc, 2)}, {self.expr(sc, 2)})")
            lines.append("")
            calls["ht"] = -4
        if r.random() < 0.25:
            self.features.add("default-arg")
            sc = Scope()
            sc.floats = {"a": True, "c": True}
            lines.append(f"def hd(a, c={self.const()}):")
            lines += self.imports("    ", False)
            lines.append(f"    return {self.expr(sc, 2)}")
            lines.append("")
            calls["hd"] = -3
        for h in range(r.randint(0, 2)):
            name = f"h{h}"
            if r.random() < 0.25:
                self.features.add("recursion")
                sc = Scope()
                sc.floats = {"a": True}
                sc.calls = dict(calls)
                lines.append(f"def {name}(a, n):")
                lines += self.imports("    ", False)
                lines.append("    if n <= 0:")
                lines.append(f"        return {self.expr(sc, 1)}")
                lines.append(f"    return {name}({self.expr(sc, 2)}, n - 1) {r.choice(['+', '*', '-'])} {self.expr(sc, 1)}")
                calls[name] = -1
            else:
                self.features.add("helper")
                arity = r.randint(1, 2)
                ps = ["a", "b"][:arity]
                sc = Scope()
                sc.floats = {p: True for p in ps}
                sc.calls = dict(calls)
                lines.append(f"def {name}({', '.join(ps)}):")
                lines += self.imports("    ", False)
                lines += self.block(sc, "    ", r.randint(0, 3), 1, False, True)
                lines.append(f"    return {self.expr(sc, 2)}")
                calls[name] = arity
            lines.append("")
        args = [f"x{i}" for i in range(nargs)]
        sc = Scope()
        sc.floats = {a: True for a in args}
        sc.calls = dict(calls)
        lines.append(f"def f({', '.join(args)}):")
        lines += self.imports("    ", False)
        lines += self.block(sc, "    ", r.randint(2, 6), 2, False, True)
        terms = [self.expr(sc, 1) for _ in range(r.randint(1, 2))]
        terms += [a for a in args if r.random() < 0.5]
        terms += [f"sum({L})" for L in sorted(sc.lists) if r.random() < 0.4]
        terms += [f'{D}["{k}"]' for D, ks in sorted(sc.dicts.items()) for k in sorted(ks) if r.random() < 0.4]
        live = [v for v in sorted(sc.floats) if v not in args]
        terms += [v for v in live if r.random() < 0.5]
        lines.append(f"    return {' + '.join(terms)}")
        return "\n".join(lines) + "\n"


def torch_twin(src):
    """The same scalar program on torch: ``math`` is torch."""
    src = src.replace("import math as m", "import torch as m")
    src = src.replace("from math import", "from torch import")
    src = re.sub(r"\bimport math\b", "import torch as math", src)
    return src


# ---------------------------------------------------------------- tensor programs


class TensorGen(ShapedGen):
    """Shapes are (), (3,) and (2, 3); every value is float64."""

    SHAPES = ((), (3,), (2, 3))

    def __init__(self, rng):
        super().__init__(rng)
        self.local_torch = rng.random() < 0.25
        self.floats = []

    def of_shape(self, sc, shape, d):
        """An expression of exactly ``shape``."""
        r = self.rng
        if d <= 0 or r.random() < 0.2:
            return self.leaf(sc, shape)
        u = r.random()
        e = lambda s=shape: self.of_shape(sc, s, d - 1)  # noqa: E731
        if u < 0.3:
            fn = r.choice(["sin", "cos", "tanh", "exp", "log", "sqrt", "sigmoid", "softplus", "atan", "sq", "method"])
            a = e()
            if fn == "exp":
                return f"torch.exp(torch.tanh({a}))"
            if fn in ("log", "sqrt"):
                return f"torch.{fn}(1.0 + {a} * {a})"
            if fn == "softplus":
                self.features.add("F")
                return f"torch.nn.functional.softplus({a})"
            if fn == "sq":
                return f"({a}) ** 2"
            if fn == "method":
                return f"({a}).{r.choice(['sin', 'cos', 'tanh', 'sigmoid'])}()"
            return f"torch.{fn}({a})"
        if u < 0.6:
            op = r.choice(["+", "-", "*", "*"])
            # broadcasting: the other operand may have a smaller shape
            smaller = [s for s in self.SHAPES if len(s) <= len(shape) and (s == () or s == shape[-len(s):])]
            s2 = r.choice(smaller)
            if s2 != shape:
                self.features.add("broadcast")
            a, b = e(), self.of_shape(sc, s2, d - 1)
            return f"({a} {op} {b})" if r.random() < 0.5 else f"({b} {op} {a})"
        if u < 0.66:
            if self.floats and r.random() < 0.5:
                self.features.add("float-arg")
                return f"{r.choice(self.floats)} * {e()}"
            return f"{r.choice(['0.5', '2.0', '-1.5', '0.3'])} * {e()}"
        if u < 0.72:
            self.features.add("where/minmax")
            a, b = e(), e()
            k = r.random()
            if k < 0.5:
                return f"torch.where({a} > {b}, {a}, {b} * 0.5)"
            return f"torch.maximum({a}, {b})" if k < 0.75 else f"({a}).abs()"
        return self.reshape(sc, shape, d)

    def reshape(self, sc, shape, d):
        """Shape-changing ops that produce ``shape``."""
        r = self.rng
        if shape == ():
            src = r.choice([(3,), (2, 3)])
            a = self.of_shape(sc, src, d - 1)
            k = r.random()
            if k < 0.35:
                self.features.add("reduce")
                return f"({a}).{r.choice(['sum', 'mean'])}()"
            if k < 0.55:
                self.features.add("reduce")
                return f"(({a}) * ({a})).sum()"
            if k < 0.8:
                self.features.add("index")
                return f"{self.var_or(sc, src, d)}[{'0' if src == (3,) else '1, 2'}]"
            self.features.add("index")
            return f"({a})[{r.choice(['-1', '1']) if src == (3,) else '0, 1'}]"
        if shape == (3,):
            k = r.random()
            if k < 0.2:
                self.features.add("stack")
                return f"torch.stack([{', '.join(self.of_shape(sc, (), d - 1) for _ in range(3))}])"
            if k < 0.35:
                self.features.add("matmul")
                return f"W @ {self.of_shape(sc, (3,), d - 1)}"
            if k < 0.5:
                self.features.add("nn.Module")
                return f"{r.choice(['NET', 'LIN'])}({self.of_shape(sc, (3,), d - 1)})"
            if k < 0.65:
                self.features.add("reduce")
                return f"({self.of_shape(sc, (2, 3), d - 1)}).sum({r.choice(['0', 'dim=0'])})"
            if k < 0.8:
                self.features.add("index")
                return f"{self.var_or(sc, (2, 3), d)}[{r.choice(['0', '1', '-1'])}]"
            if k < 0.9:
                self.features.add("cat")
                return f"torch.cat([({self.of_shape(sc, (), d - 1)}).reshape(1), ({self.of_shape(sc, (3,), d - 1)})[1:]])"
            self.features.add("flip")
            return f"({self.of_shape(sc, (3,), d - 1)}).flip(0)"
        k = r.random()
        if k < 0.3:
            self.features.add("stack")
            return f"torch.stack([{self.of_shape(sc, (3,), d - 1)}, {self.of_shape(sc, (3,), d - 1)}])"
        if k < 0.5:
            self.features.add("outer")
            return f"torch.outer(({self.of_shape(sc, (3,), d - 1)})[:2], {self.of_shape(sc, (3,), d - 1)})"
        if k < 0.7:
            self.features.add("nn.Module")
            return f"{r.choice(['NET', 'LIN'])}({self.of_shape(sc, (2, 3), d - 1)})"
        if k < 0.85:
            self.features.add("matmul")
            return f"({self.of_shape(sc, (2, 3), d - 1)}) @ W"
        self.features.add("unsqueeze")
        return f"({self.of_shape(sc, (3,), d - 1)}).unsqueeze(0) * ({self.of_shape(sc, (3,), d - 1)})[:2].unsqueeze(1)"

    def base(self, sc, shape):
        """A variable brought to ``shape`` (always terminates)."""
        r = self.rng
        v = r.choice(sorted(sc["vars"]))
        s = sc["vars"][v]
        if s == shape:
            return v
        if shape == ():
            return f"{v}[{r.randrange(3)}]" if s == (3,) else f"{v}[{r.randrange(2)}, {r.randrange(3)}]"
        if shape == (3,):
            return f"({v} * C3)" if s == () else f"{v}[{r.randrange(2)}]"
        return f"({v} * C23)"

    def leaf(self, sc, shape):
        r = self.rng
        v = self.var(sc, shape)
        if shape == ():
            if v is not None and r.random() < 0.7:
                return v
            return self.base(sc, shape)
        if v is not None and r.random() < 0.85:
            return v
        if shape == (3,) and sc["lists"] and r.random() < 0.5:
            L = r.choice(sorted(sc["lists"]))
            self.features.add("tensor-list")
            return f"torch.stack({L}).sum(0)"
        if shape == (3,) and sc["dicts"] and r.random() < 0.5:
            D = r.choice(sorted(sc["dicts"]))
            self.features.add("tensor-dict")
            return f'{D}["{r.choice(sorted(sc["dicts"][D]))}"]'
        return self.base(sc, shape)

    def child(self, sc):
        return {"vars": dict(sc["vars"]), "fresh": set(sc["fresh"]), "lists": dict(sc["lists"]),
                "dicts": {k: set(v) for k, v in sc["dicts"].items()}, "ints": list(sc["ints"])}

    def mention(self, sc, text):
        for v in list(sc["fresh"]):
            if re.search(rf"\b{v}\b", text):
                sc["fresh"].discard(v)

    def assign(self, sc, ind, name, shape, d, new=True):
        e = self.of_shape(sc, shape, d)
        is_fresh = not (re.fullmatch(r"[A-Za-z_]\w*", e) or re.fullmatch(r"[A-Za-z_]\w*\[[^\]]*\]", e))
        if not is_fresh:
            self.mention(sc, e)
        sc["vars"][name] = shape
        if is_fresh:
            sc["fresh"].add(name)
        else:
            sc["fresh"].discard(name)
        return [f"{ind}{name} = {e}"]

    def stmt(self, sc, ind, depth, in_loop):
        r = self.rng
        u = r.random()
        d = r.randint(1, 3)
        fresh = sorted(v for v in sc["fresh"] if sc["vars"][v] != ())
        if u < 0.25:
            return self.assign(sc, ind, self.fresh("y"), r.choice(self.SHAPES), d)
        if u < 0.45 and fresh:
            v = r.choice(fresh)
            shape = sc["vars"][v]
            k = r.random()
            self.features.add("inplace")
            if k < 0.3:
                self.features.add("setitem")
                sub = "()" if shape == (3,) else "(3,)"
                rhs = self.of_shape(sc, eval(sub), d)
                self.mention(sc, rhs)
                return [f"{ind}{v}[{r.choice(['0', '1', '-1'])}] = {rhs}"]
            if k < 0.4 and shape == (3,):
                self.features.add("setitem-slice")
                rhs = self.of_shape(sc, (3,), d)
                return [f"{ind}{v}[1:] = ({rhs})[:2]"]
            if k < 0.6:
                op = r.choice(["+=", "-=", "*="])
                rhs = self.of_shape(sc, r.choice([shape, (), shape[-1:]]), d)
                if op == "*=":
                    rhs = f"torch.tanh({rhs})"
                return [f"{ind}{v} {op} {rhs}"]
            if k < 0.8:
                meth = r.choice(["mul_", "add_", "sub_"])
                return [f"{ind}{v}.{meth}({self.of_shape(sc, shape, d)})"]
            meth = r.choice(["sin_", "tanh_", "cos_"])
            return [f"{ind}{v}.{meth}()"]
        if u < 0.55 and depth > 0:
            return self.if_stmt(sc, ind, depth, in_loop)
        if u < 0.63 and depth > 0:
            self.features.add("for")
            i = self.fresh("i")
            c = self.child(sc)
            c["ints"].append(i)
            out = [f"{ind}for {i} in range({r.randint(1, 3)}):"]
            out += self.block(c, ind + "    ", r.randint(1, 3), depth - 1, True)
            return out
        if u < 0.68 and depth > 0:
            return self.while_stmt(sc, ind, depth)
        if in_loop and u < 0.71:
            kw = r.choice(["break", "continue"])
            self.features.add(kw)
            return [f"{ind}if {self.cond(sc)}:", f"{ind}    {kw}"]
        if u < 0.74:
            self.features.add("early-return")
            return [f"{ind}if {self.cond(sc)}:", f"{ind}    out = {self.of_shape(sc, (3,), 1)}", f"{ind}    return __RET__"]
        if u < 0.82:
            k = r.random()
            if k < 0.4 or not sc["lists"]:
                self.features.add("tensor-list")
                L = self.fresh("L")
                items = [self.of_shape(sc, (3,), d) for _ in range(r.randint(1, 2))]
                for it in items:
                    self.mention(sc, it)
                sc["lists"][L] = len(items)
                return [f"{ind}{L} = [{', '.join(items)}]"]
            L = r.choice(sorted(sc["lists"]))
            it = self.of_shape(sc, (3,), d)
            self.mention(sc, it)
            self.features.add("append")
            return [f"{ind}{L}.append({it})"]
        if u < 0.87:
            self.features.add("tensor-dict")
            if sc["dicts"] and r.random() < 0.5:
                D = r.choice(sorted(sc["dicts"]))
                key = r.choice(["a", "b"])
                rhs = self.of_shape(sc, (3,), d)
                self.mention(sc, rhs)
                sc["dicts"][D].add(key)
                return [f'{ind}{D}["{key}"] = {rhs}']
            D = self.fresh("D")
            rhs = self.of_shape(sc, (3,), d)
            self.mention(sc, rhs)
            sc["dicts"][D] = {"a"}
            return [f'{ind}{D} = {{"a": {rhs}}}']
        if u < 0.93:
            self.features.add("nested-def")
            g = self.fresh("g")
            shape = r.choice(self.SHAPES)
            c = self.child(sc)
            c["fresh"] = set()
            p = self.fresh("p")
            c["vars"][p] = shape
            body = [f"{ind}def {g}({p}):"]
            if self.local_torch:
                self.features.add("local-import-closure")
            body.append(f"{ind}    return {self.of_shape(c, shape, 2)}")
            nv = self.fresh("y")
            body.append(f"{ind}{nv} = {g}({self.of_shape(sc, shape, 1)})")
            sc["vars"][nv] = shape
            sc["fresh"].add(nv)
            return body
        return self.assign(sc, ind, self.fresh("y"), r.choice(self.SHAPES), d)

    def module(self, seed, shapes, nfloat):
        r = self.rng
        args = [f"x{i}" for i in range(len(shapes))]
        self.floats = [f"s{i}" for i in range(nfloat)]
        sc = {"vars": {a: s for a, s in zip(args, shapes)}, "fresh": set(), "lists": {}, "dicts": {}, "ints": []}
        body = []
        if r.random() < 0.1:
            self.features.add("arg-inplace")
            a = r.choice(args)
            body.append(f"    {a}.mul_({r.choice(['2.0', '0.5', '-1.0'])})")
        body += self.block(sc, "    ", r.randint(2, 6), 2, False)
        outs = [self.of_shape(sc, (3,), 1)] + [v for v, s in sorted(sc["vars"].items()) if s in ((3,), (2, 3)) and r.random() < 0.4]
        body.append(f"    out = {' + '.join(outs)}")
        red = r.choice(["(out * out).sum()", "torch.tanh(out).sum()", "out.sum()", "(out ** 3).mean()", "torch.sin(out).sum()"])
        head = ["    import torch"] if self.local_torch else []
        if self.local_torch:
            self.features.add("local-import")
        params = ", ".join(args + self.floats)
        lines = ["import torch", "from torch import nn", "",
                 f"torch.manual_seed({seed % 100000})",
                 "W = torch.randn(3, 3, dtype=torch.float64) * 0.5",
                 "LIN = nn.Linear(3, 3).double()",
                 "C3 = torch.tensor([0.5, -1.0, 1.5], dtype=torch.float64)",
                 "C23 = torch.tensor([[1.0, -0.5, 0.25], [0.5, 2.0, -1.0]], dtype=torch.float64)",
                 "NET = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()",
                 "", "",
                 f"def f({params}):"] + head + [b.replace("__RET__", red) for b in body] + [f"    return {red}", "", "",
                 f"def fv({params}):"] + head + [b.replace("__RET__", "out") for b in body] + ["    return out", ""]
        return "\n".join(lines)


# ============================================================ programs


class Program:
    def __init__(self, seed, index, kind):
        self.seed, self.index, self.kind = seed, index, kind
        rng = random.Random(f"tzfuzz:{seed}:{index}:{kind}")
        if kind == "scalar":
            self.nargs = rng.choice([1, 1, 2, 3])
            g = ScalarGen(rng)
            self.src = g.module(self.nargs)
            self.args = [round(rng.uniform(-1.5, 1.5), 3) + 0.0001 * rng.random() for _ in range(self.nargs)]
            self.features = sorted(g.features) + [f"math:{g.mode}"]
        elif kind == "numpy":
            self.src, self.args, self.features = fuzz_numpy.make(rng, seed, index)
        else:
            shapes = [rng.choice([(3,), (3,), (2, 3)]) for _ in range(rng.choice([1, 1, 2]))]
            nfloat = 1 if rng.random() < 0.25 else 0
            g = TensorGen(rng)
            self.src = g.module(seed * 7919 + index, shapes, nfloat)
            self.shapes = shapes
            self.args = [torch.tensor([rng.uniform(-1.2, 1.2) for _ in range(math.prod(s))], dtype=torch.float64).reshape(s)
                         for s in shapes] + [rng.uniform(-1.0, 1.0) for _ in range(nfloat)]
            self.features = sorted(g.features)
        self.name = f"tzfuzz_{kind[0]}_{seed}_{index}"


_LOADED = []


def load(src, name, tmpdir):
    path = os.path.join(tmpdir, name + ".py")
    with open(path, "w") as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


# ============================================================ checking


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout("timed out")


_DEADLINE = [None]   # --minimize's budget: no single check runs past it


def guarded(fn, *a, timeout=TIMEOUT_S):
    """Run a torchzygote call: (result, None) or (None, (class, message))."""
    if _DEADLINE[0] is not None:
        timeout = max(1, min(timeout, int(_DEADLINE[0] - time.time())))
    use_alarm = hasattr(signal, "SIGALRM") and os.environ.get("TZFUZZ_NO_ALARM") is None
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        old_left = signal.alarm(timeout)
    try:
        return fn(*a), None
    except TorchZygoteError as e:
        return None, ("clear", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    except Timeout:
        return None, ("timeout", f"Timeout: timed out after {timeout} s")   # slowness, not a wrong number
    except Exception as e:  # noqa: BLE001 -- any other exception is an internal error
        tb = traceback.extract_tb(e.__traceback__)
        where = tb[-1] if tb else None
        loc = f" [{os.path.basename(where.filename)}:{where.lineno}]" if where else ""
        return None, ("internal", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}{loc}")
    finally:
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            if old_left:
                signal.alarm(old_left)


def plain(f, *a):
    """The plain program's value, or None if it raises or is not a finite number."""
    try:
        with torch.no_grad():
            y = f(*a)
        if isinstance(y, torch.Tensor):
            if y.numel() != 1 and y.dim() != 0 and not torch.isfinite(y).all():
                return None
            if not torch.isfinite(y).all() or y.abs().max() > 1e8:
                return None
            return y
        y = float(y)
        return y if math.isfinite(y) and abs(y) < 1e8 else None
    except Exception:  # noqa: BLE001
        return None


def _num(v):
    if v is None:
        return 0.0
    if isinstance(v, torch.Tensor):
        return v.item()
    return float(v)


def fd(fn, args, i, h):
    """Central difference of scalar ``fn`` in argument ``i`` (a float)."""
    a1, a2 = list(args), list(args)
    a1[i] += h
    a2[i] -= h
    y1, y2, y0 = plain(fn, *a1), plain(fn, *a2), plain(fn, *args)
    if y1 is None or y2 is None or y0 is None:
        return None
    y0, y1, y2 = _num(y0), _num(y1), _num(y2)
    if abs(y1 + y2 - 2 * y0) > 1e-6 * max(1.0, abs(y0)):
        return None   # f jumps at x (a branch that rounding decides there): no derivative to compare
    return (y1 - y2) / (2 * h)


class Verdict:
    def __init__(self):
        self.cls = "skipped"
        self.details = []

    def ok(self):
        if self.cls == "skipped":
            self.cls = "ok"

    def bad(self, cls, detail):
        rank = {c: i for i, c in enumerate(("skipped", "ok", "clear", "timeout", "mismatch", "internal"))}
        if rank[cls] > rank[self.cls]:
            self.cls = cls
        self.details.append(f"{cls}: {detail}")

    def skip(self, detail):
        self.details.append(f"skipped: {detail}")


def compare(v, label, got, fd_a, fd_b, ref=None, rtol=1e-5):
    """One number: torchzygote's ``got`` against finite differences (``fd_a``,
    ``fd_b`` from steps H1, H2) and torch's ``ref`` (None if unavailable)."""
    if fd_a is None or fd_b is None:
        v.skip(f"{label}: finite difference raised, or f jumps at x")
        return
    scale = max(1.0, abs(fd_b))
    noise = abs(fd_a - fd_b)
    if noise > 10 * rtol * scale:
        v.skip(f"{label}: non-smooth (fd {fd_a!r} vs {fd_b!r})")
        return
    g = _num(got)
    if not math.isfinite(g) or abs(g - fd_b) > rtol * scale + 10 * noise:
        v.bad("mismatch", f"{label}: torchzygote {g!r}, finite differences {fd_b!r} (h={H2}) / {fd_a!r} (h={H1})"
              + (f", torch {ref!r}" if ref is not None else ""))
        return
    if ref is not None and math.isfinite(ref) and abs(ref - fd_b) <= rtol * scale + 10 * noise:
        if abs(g - ref) > 1e-8 * max(1.0, abs(ref)):
            v.bad("mismatch", f"{label}: torchzygote {g!r}, torch autograd {ref!r} (fd {fd_b!r})")
            return
    v.ok()


# ---------------------------------------------------------------- scalar checks


def torch_grads(ft, args, order, i=0, j=None):
    """torch autograd on the torch twin: first-order gradients (tuple), or the
    order-th derivative in argument i (one argument), or d2/dxi dxj."""
    try:
        xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
        y = ft(*xs)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            return None
        if order == 1:
            gs = torch.autograd.grad(y, xs, allow_unused=True)
            return tuple(0.0 if g is None else g.item() for g in gs)
        if j is not None:
            (g,) = torch.autograd.grad(y, xs[i], create_graph=True, allow_unused=True)
            if g is None or not g.requires_grad:
                return 0.0
            (g2,) = torch.autograd.grad(g, xs[j], allow_unused=True)
            return 0.0 if g2 is None else g2.item()
        g = y
        for _ in range(order):
            if not g.requires_grad:
                return 0.0
            (g,) = torch.autograd.grad(g, xs[i], create_graph=True, allow_unused=True)
            if g is None:
                return 0.0
        return g.item()
    except Exception:  # noqa: BLE001 -- torch does not accept this program
        return None


def _partial(f, i, n):
    """x -> d f / d x_i, as a function of n positional floats (for nesting)."""
    if n == 1:
        return lambda a: tz.gradient(f, a)[i]
    if n == 2:
        return lambda a, b: tz.gradient(f, a, b)[i]
    return lambda a, b, c: tz.gradient(f, a, b, c)[i]


def _nth(f, k):
    for _ in range(k):
        f = tz.derivative(f)
    return f


def check_scalar(prog, mod, tmod, order):
    f, ft = mod.f, tmod.f if tmod else None
    args = prog.args
    res = {}
    y = plain(f, *args)
    v = Verdict()
    if y is None:
        v.skip("the plain program raises or is not finite")
        return {1: v}
    got, err = guarded(tz.gradient, f, *args)
    ref = torch_grads(ft, args, 1) if ft else None
    if err:
        v.bad(*err)
    elif not isinstance(got, tuple) or len(got) != len(args):
        v.bad("mismatch", f"gradient returned {got!r}")
    else:
        for i in range(len(args)):
            compare(v, f"d/dx{i}", got[i], fd(f, args, i, H1), fd(f, args, i, H2), ref[i] if ref else None)
        wg, err2 = guarded(tz.withgradient, f, *args)
        if err2:
            v.bad(*err2)
        elif abs(_num(wg.val) - _num(y)) > 1e-9 * max(1.0, abs(_num(y))):
            v.bad("mismatch", f"withgradient value {wg.val!r}, plain {y!r}")
    res[1] = v
    if order < 2 or v.cls in ("internal", "clear", "mismatch", "timeout"):
        return res
    n = len(args)
    v2 = Verdict()
    res[2] = v2
    if all(g is None for g in got):
        v2.skip("the first derivative is structurally zero (None)")
        return res
    if n == 1:
        d1 = tz.derivative(f)
        got2, err = guarded(lambda x: tz.derivative(tz.derivative(f))(x), args[0])
        i = j = 0
    else:
        rng = random.Random(f"{prog.seed}:{prog.index}:o2")
        i, j = rng.choice([k for k in range(n) if got[k] is not None]), rng.randrange(n)
        d1 = _partial(f, i, n)
        got2, err = guarded(lambda *a: tz.gradient(_partial(f, i, n), *a)[j], *args)
    if err:
        v2.bad(*err)
    else:
        dfn = lambda *a: _num(d1(*a))  # noqa: E731
        ref2 = torch_grads(ft, args, 2, i, None if n == 1 else j) if ft else None
        compare(v2, f"d2/dx{i}dx{j}", got2, fd(dfn, args, j, H1), fd(dfn, args, j, H2), ref2, rtol=1e-4)
    res[2] = v2
    if n == 1 and prog.high and v2.cls == "ok":
        for k in (3, 4):
            vk = Verdict()
            gotk, err = guarded(lambda x: _nth(f, k)(x), args[0], timeout=2 * TIMEOUT_S)
            if err:
                vk.bad(*err)
            else:
                lower = _nth(f, k - 1)
                dfn = lambda *a: _num(lower(*a))  # noqa: E731
                refk = torch_grads(ft, args, k) if ft else None
                compare(vk, f"d{k}/dx{k}", gotk, fd(dfn, args, 0, 1e-4), fd(dfn, args, 0, 1e-5), refk, rtol=1e-3)
            res[k] = vk
            if vk.cls != "ok":
                break
    return res


# ---------------------------------------------------------------- tensor checks


def _clone(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _tfd(fn, args, i, idx, h):
    """Central difference of a scalar tensor function in element idx of argument i."""
    def at(delta):
        xs = _clone(args)
        if isinstance(xs[i], torch.Tensor):
            xs[i].view(-1)[idx] += delta
        else:
            xs[i] += delta
        y = plain(fn, *xs)
        return None if y is None else _num(y)
    y1, y2 = at(h), at(-h)
    return None if y1 is None or y2 is None else (y1 - y2) / (2 * h)


def torch_tensor_grads(f, args):
    try:
        xs = [a.clone().requires_grad_(True) if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in args]
        y = f(*xs)
        gs = torch.autograd.grad(y, xs, allow_unused=True)
        return [torch.zeros_like(x) if g is None else g.detach() for g, x in zip(gs, xs)]
    except Exception:  # noqa: BLE001
        return None


def check_tensor_grad(v, f, args, got, ref, label="d/d", rtol=1e-5):
    for i, a in enumerate(args):
        g = got[i]
        numel = a.numel() if isinstance(a, torch.Tensor) else 1
        if isinstance(a, torch.Tensor) and g is not None and (not isinstance(g, torch.Tensor) or g.shape != a.shape):
            v.bad("mismatch", f"{label}x{i}: gradient {g!r} is not shaped like the argument {tuple(a.shape)}")
            continue
        for k in range(numel):
            gk = None if g is None else (g.reshape(-1)[k].item() if isinstance(g, torch.Tensor) else _num(g))
            rk = None if ref is None else ref[i].reshape(-1)[k].item()
            compare(v, f"{label}x{i}[{k}]", gk, _tfd(f, args, i, k, H1), _tfd(f, args, i, k, H2), rk, rtol)


def check_tensor(prog, mod, order):
    f, fvec = mod.f, getattr(mod, "fv", None)
    args = prog.args
    res = {}
    v = Verdict()
    y = plain(f, *_clone(args))
    if y is None:
        v.skip("the plain program raises or is not finite")
        return {1: v}
    got, err = guarded(lambda: tz.gradient(f, *_clone(args)))
    if err:
        v.bad(*err)
    elif not isinstance(got, tuple) or len(got) != len(args):
        v.bad("mismatch", f"gradient returned {got!r}")
    else:
        ref = torch_tensor_grads(f, args)
        check_tensor_grad(v, f, args, got, ref)
        tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        floats = [a for a in args if not isinstance(a, torch.Tensor)]
        if v.cls == "ok" and not floats and fvec is not None:
            # jacobian of the vector-valued twin against torch.autograd.functional.jacobian
            J, err = guarded(lambda: tz.jacobian(fvec, *_clone(args)))
            try:
                Jref = torch.autograd.functional.jacobian(lambda *xs: fvec(*_clone(xs)), tuple(_clone(args)))
            except Exception:  # noqa: BLE001
                Jref = None
            if err:
                v.bad(*err)
            elif Jref is not None:
                for i in tensors:
                    if not isinstance(J[i], torch.Tensor) or J[i].shape != Jref[i].shape or not torch.allclose(J[i], Jref[i], rtol=1e-7, atol=1e-9):
                        v.bad("mismatch", f"jacobian block {i}: torchzygote {J[i]!r}, torch {Jref[i]!r}")
    res[1] = v
    if order < 2 or v.cls != "ok":
        return res
    v2 = Verdict()
    res[2] = v2
    if got[0] is None:
        v2.skip("the first derivative is structurally zero (None)")
        return res
    rest = args[1:]
    f1 = lambda x: f(x.clone(), *_clone(rest))  # noqa: E731  (f may write its argument in place)
    # tz.hessian's reverse-over-reverse path, called directly (without its torch fallback)
    H, err = guarded(lambda: tz.jacobian(lambda x: tz.gradient(f1, x)[0], args[0].clone())[0])
    if err:
        v2.bad(*err)
    else:
        path = getattr(tz.hessian, "last_path", None) or "torchzygote reverse-over-reverse"
        if path != "torchzygote reverse-over-reverse":
            m = re.match(r"torch.autograd.functional.hessian \((\w+): (.*)", path, re.S)
            kind = "clear" if m and m.group(1) in ("LiftError", "NoRuleError", "GradientError", "TorchZygoteError") else "internal"
            v2.bad(kind, f"hessian fell back: {path[:300]}")
        else:
            try:
                Href = torch.autograd.functional.hessian(lambda x: f1(x.clone()), args[0].clone())
            except Exception:  # noqa: BLE001
                Href = None
            if Href is not None:
                if H.shape != Href.shape or not torch.allclose(H, Href, rtol=1e-7, atol=1e-9):
                    v2.bad("mismatch", f"hessian: torchzygote {H!r}, torch {Href!r}")
                else:
                    v2.ok()
            else:
                # finite differences of torchzygote's gradient, one column per element
                g1 = lambda x: tz.gradient(f1, x.clone())[0]  # noqa: E731
                n = args[0].numel()
                Hf = H.reshape(n, n)
                for k in range(n):
                    cols = []
                    for hh in (H1, H2):
                        xp, xm = args[0].clone(), args[0].clone()
                        xp.view(-1)[k] += hh
                        xm.view(-1)[k] -= hh
                        try:
                            cols.append(((g1(xp) - g1(xm)) / (2 * hh)).reshape(-1))
                        except Exception:  # noqa: BLE001
                            cols.append(None)
                    if cols[0] is None or cols[1] is None:
                        v2.skip("fd of gradient raised")
                        continue
                    for r_ in range(n):
                        compare(v2, f"H[{r_},{k}]", Hf[r_, k].item(), cols[0][r_].item(), cols[1][r_].item(), rtol=1e-4)
    res[2] = v2
    return res


# ============================================================ driver


def run_one(seed, index, kind, order, tmpdir, high_every=25, prog=None, mode="reverse"):
    if prog is None:
        prog = Program(seed, index, kind)
        prog.high = order >= 2 and (index % high_every == 0)
    try:
        mod = load(prog.src, prog.name, tmpdir)
        tmod = None
        if kind == "scalar":
            try:
                tmod = load(torch_twin(prog.src), prog.name + "_t", tmpdir)
            except Exception:  # noqa: BLE001
                tmod = None
    except Exception as e:  # noqa: BLE001 -- a generator bug: report, do not count
        v = Verdict()
        v.skip(f"generated program does not load: {type(e).__name__}: {e}")
        return prog, {1: v}
    res = {}
    if mode != "forward":
        if kind == "scalar":
            res = check_scalar(prog, mod, tmod, order)
        elif kind == "numpy":
            res = fuzz_numpy.check(sys.modules[__name__], prog, mod, order)
        else:
            res = check_tensor(prog, mod, order)
    if mode != "reverse":
        res.update(fuzz_forward.check(sys.modules[__name__], prog, mod, tmod, order))
    return prog, res


def kind_of(i, kind):
    if kind != "all":
        return kind
    return "tensor" if i % 4 == 3 else "numpy" if i % 8 == 5 else "scalar"


def _worker(job):
    seed, indices, kind, order, high_every, mode = job
    torch.set_num_threads(1)
    out = []
    with tempfile.TemporaryDirectory(prefix="tzfuzz") as tmpdir:
        for i in indices:
            t = time.perf_counter()
            prog, res = run_one(seed, i, kind_of(i, kind), order, tmpdir, high_every, mode=mode)
            dt = time.perf_counter() - t
            out.append((i, prog.kind, prog.src, prog.args if prog.kind == "scalar" else [a.tolist() if isinstance(a, (torch.Tensor, np.ndarray)) else float(a) for a in prog.args],
                        prog.features, {o: (v.cls, v.details) for o, v in res.items()}, dt))
    return out


def write_failure(outdir, seed, i, kind, src, args, features, o, cls, details):
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, f"{cls}_o{o}_{kind}_seed{seed}_i{i}.py")
    head = [f"# torchzygote fuzz failure: {cls} at order {o}",
            f"# seed {seed}, program {i}, kind {kind}",
            f"# arguments: {args!r}",
            f"# features: {', '.join(features)}"]
    head += [f"# {line}" for d in details if not d.startswith("skipped") for line in d.splitlines()][:60]
    with open(path, "w") as fh:
        fh.write("\n".join(head) + "\n\n" + src)
    return path


# ---------------------------------------------------------------- minimizer


class _Given:
    """A program read back from a failure file."""

    def __init__(self, src, kind, args, seed, index, high):
        self.src, self.kind, self.seed, self.index, self.high = src, kind, seed, index, high
        array = np.array if kind == "numpy" else lambda a: torch.tensor(a, dtype=torch.float64)
        self.args = args if kind == "scalar" else [array(a) if isinstance(a, list) else a for a in args]
        self.name = f"tzmin_{kind[0]}_{seed}_{index}"
        self.features = []


def _signature(cls, details):
    d = next((d for d in details if d.startswith(cls)), "")
    body = d.split(": ", 1)[1] if ": " in d else d
    if cls == "internal":
        m = re.match(r"(\w+):.*?(\[[^\]]*\])?$", body)
        # the location without numbers: generated code's line and counter change as lines go
        return (cls, m.group(1) if m else body[:20], re.sub(r"\d+", "#", m.group(2)) if m and m.group(2) else None)
    return (cls, re.match(r"[a-z]+", body).group(0) if re.match(r"[a-z]+", body) else body[:10])


def _blocks(lines):
    """(start, end) of each line's statement including its indented body."""
    ind = [len(l) - len(l.lstrip()) for l in lines]
    out = []
    for i, l in enumerate(lines):
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or ind[j] > ind[i]):
            j += 1
        out.append((i, j))
    return out


def minimize(path, order=None, budget_s=120):
    """Shrink a failure file line by line while it fails the same way; print the result."""
    text = open(path).read()
    head = [l for l in text.splitlines() if l.startswith("#")]
    m = re.search(r"# torchzygote fuzz failure: (\w+) at order (f?)(\d+)", text)
    want_cls, mode, order = m.group(1), "forward" if m.group(2) else "reverse", int(m.group(3))
    o = m.group(2) + m.group(3) if m.group(2) else order
    kind = re.search(r"kind (\w+)", text).group(1)
    seed, index = map(int, re.search(r"# seed (\d+), program (\d+)", text).groups())
    args = eval(re.search(r"# arguments: (.*)", text).group(1))
    src_lines = [l for l in text.splitlines() if not l.startswith("#")]
    while src_lines and not src_lines[0].strip():
        src_lines.pop(0)
    tmpdir = tempfile.mkdtemp(prefix="tzmin")
    counter = [0]

    def outcome(lines):
        counter[0] += 1
        src = "\n".join(lines) + "\n"
        try:
            compile(src, "<min>", "exec")
        except SyntaxError:
            return None
        prog = _Given(src, kind, args, seed, index, order >= 3)
        prog.name += f"_{counter[0]}"
        try:
            _, res = run_one(seed, index, kind, order, tmpdir, prog=prog, mode=mode)
        except Exception:  # noqa: BLE001 -- a candidate the checker cannot run
            return None
        if o not in res:
            return None
        cls, details = res[o].cls, res[o].details
        return _signature(cls, details), details

    first = outcome(src_lines)
    if first is None or first[0][0] != want_cls:
        print(f"does not reproduce: {first}")
        return None
    sig = first[0]
    t0 = time.time()
    _DEADLINE[0] = t0 + budget_s
    changed = True
    while changed and time.time() - t0 < budget_s:
        changed = False
        for start, end in reversed(_blocks(src_lines)):
            if start >= len(src_lines) or time.time() - t0 > budget_s:
                continue
            cands = [src_lines[:start] + src_lines[end:]]
            if end - start > 1:
                cands.append(src_lines[:start] + src_lines[start + 1:start + 1] + src_lines[start + 1:])
                body = [l[4:] if l.startswith(" " * (len(src_lines[start]) - len(src_lines[start].lstrip()) + 4)) else l
                        for l in src_lines[start + 1:end]]
                cands.append(src_lines[:start] + body + src_lines[end:])
            cands.append(src_lines[:start] + src_lines[start + 1:])
            for c in cands:
                if c == src_lines:
                    continue
                r = outcome(c)
                if r is not None and r[0] == sig:
                    src_lines = c
                    changed = True
                    break
    _DEADLINE[0] = None
    final = outcome(src_lines)
    out = "\n".join(head[:4] + [f"# {line}" for d in final[1] if not d.startswith("skipped") for line in d.splitlines()][:12]) + "\n\n" + "\n".join(src_lines) + "\n"
    mpath = path[:-3] + ".min.py" if path.endswith(".py") else path + ".min.py"
    with open(mpath, "w") as fh:
        fh.write(out)
    print(out)
    print(f"# {counter[0]} candidates tried in {time.time() - t0:.0f} s -> {mpath}")
    return mpath


SKIP_REASONS = (("raises or is not finite", "the plain program raises or is not finite"),
                ("non-smooth", "non-smooth point (the two step sizes disagree)"),
                ("finite difference raised", "finite differences raised, or f jumps at x"),
                ("structurally zero", "first derivative structurally zero"))


def _skip_reason(details):
    """Why a skipped program was not checked, in a few words."""
    for key, reason in SKIP_REASONS:
        if any(key in d for d in details if d.startswith("skipped")):
            return reason
    return next((d for d in details if d.startswith("skipped")), "skipped")[:80]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--kind", choices=("scalar", "tensor", "numpy", "all"), default="all")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="fuzz_failures")
    ap.add_argument("--high-every", type=int, default=25, help="with --order 2: orders 3 and 4 on one in this many 1-arg scalar programs")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--mode", choices=("reverse", "forward", "both"), default="reverse",
                    help="reverse-mode checks, forward-mode checks (jvp; hvp at order 2), or both")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--minimize", nargs="*", help="shrink these failure files instead of generating programs")
    a = ap.parse_args(argv)
    if a.minimize:
        for p in a.minimize:
            print(f"==== {p}")
            minimize(p)
        return 0
    idx = list(range(a.start, a.start + a.n))
    jobs = [(a.seed, idx[k:k + a.chunk], a.kind, a.order, a.high_every, a.mode) for k in range(0, len(idx), a.chunk)]
    counts = defaultdict(Counter)   # order -> class -> count
    kcounts = defaultdict(Counter)  # (kind, order) -> class
    clear_msgs, internal_msgs, skip_msgs = Counter(), Counter(), Counter()
    failures = []
    t0 = time.time()
    done = 0
    if a.jobs > 1:
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        pool = ctx.Pool(a.jobs, maxtasksperchild=4)
        it = pool.imap_unordered(_worker, jobs)
    else:
        pool = None
        it = map(_worker, jobs)
    slow = []
    interrupted = False
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for chunk in it:
            for i, kind, src, args, features, res, dt in chunk:
                done += 1
                slow.append((dt, i))
                for o, (cls, details) in sorted(res.items(), key=lambda kv: str(kv[0])):
                    counts[o][cls] += 1
                    kcounts[(kind, o)][cls] += 1
                    if cls == "skipped":
                        skip_msgs[(kind, o, _skip_reason(details))] += 1
                    elif any("non-smooth" in d for d in details):
                        skip_msgs[(kind, o, "checked, with some numbers skipped at a non-smooth point")] += 1
                    if cls in ("mismatch", "internal", "clear", "timeout"):
                        for d in details:
                            if d.startswith(cls):
                                msg = re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", d.split(": ", 1)[1])[:150]
                                (clear_msgs if cls == "clear" else internal_msgs)[msg] += 1
                                break
                    if cls in ("mismatch", "internal", "timeout"):
                        path = write_failure(a.out, a.seed, i, kind, src, args, features, o, cls, details)
                        failures.append((i, kind, o, cls, details, path))
                        if not a.quiet:
                            print(f"[{cls}] seed {a.seed} program {i} ({kind}) order {o}: "
                                  f"{next((d for d in details if d.startswith(cls)), '')[:300]}\n  -> {path}", flush=True)
            if done % 500 < len(chunk):
                print(f"... {done}/{a.n} programs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        if pool:
            pool.terminate()
            pool = None
    if pool:
        pool.close()
        pool.join()
    el = time.time() - t0
    print(f"\n{done} programs{' (INTERRUPTED)' if interrupted else ''} (seed {a.seed}, start {a.start}, kind {a.kind}, order {a.order}, mode {a.mode}) in {el:.1f} s: "
          f"{done / max(el, 1e-9):.1f} programs/s with {a.jobs} job(s)")
    print(f"{'kind':8s} {'order':>5s} " + " ".join(f"{c:>9s}" for c in CLASSES))
    for (kind, o) in sorted(kcounts, key=str):
        print(f"{kind:8s} {str(o):>5s} " + " ".join(f"{kcounts[(kind, o)][c]:9d}" for c in CLASSES))
    for o in sorted(counts, key=str):
        print(f"{'all':8s} {str(o):>5s} " + " ".join(f"{counts[o][c]:9d}" for c in CLASSES))
    if skip_msgs:
        print("\nskipped programs by reason (and checked programs with non-smooth numbers):")
        for (kind, o, m), c in sorted(skip_msgs.items(), key=str):
            print(f"  {c:6d}  {kind} {o}: {m}")
    if clear_msgs:
        print("\nclear errors (unsupported constructs):")
        for m, c in clear_msgs.most_common(20):
            print(f"  {c:6d}  {m}")
    if internal_msgs:
        print("\ninternal errors / mismatches by message:")
        for m, c in internal_msgs.most_common(30):
            print(f"  {c:6d}  {m}")
    slow.sort(reverse=True)
    print("\nslowest programs: " + ", ".join(f"{i} ({dt:.1f} s)" for dt, i in slow[:5]))
    if failures:
        print(f"\n{len(failures)} failures written to {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
