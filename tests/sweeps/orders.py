"""Higher-order derivatives of scalar programs, nested ``derivative`` to order 4, against
finite differences of the order below: ``python -m tests.sweeps.orders``. Too slow for the
suite at order 4 (each level differentiates the previous level's generated code)."""
import math
import sys
import time

import torchzygote as tz

PROGRAMS = {
    "x*sin(x)": lambda x: x * math.sin(x),
    "x**5 + 2x": lambda x: x ** 5 + 2 * x,
    "exp(sin(x))": lambda x: math.exp(math.sin(x)),
    "pow loop": lambda x: _pow(x, 4),
}


def _pow(x, n):
    r = 1.0
    for _ in range(n):
        r = r * x
    return r


def main(max_order: int = 4) -> int:
    bad = 0
    for name, f in PROGRAMS.items():
        d = f
        for order in range(1, max_order + 1):
            lower, d = d, tz.derivative(d)
            t = time.perf_counter()
            x, h = 0.7, 1e-4
            got = d(x)
            want = (lower(x + h) - lower(x - h)) / (2 * h)
            ok = math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6)
            bad += not ok
            print(f"{name:12s} order {order}: {got:+.10f} vs fd {want:+.10f} {'ok' if ok else 'MISMATCH'} "
                  f"({time.perf_counter() - t:.1f} s)", flush=True)
    print(f"{bad} mismatches")
    return bad


if __name__ == "__main__":
    sys.exit(1 if main(int(sys.argv[1]) if len(sys.argv) > 1 else 4) else 0)
