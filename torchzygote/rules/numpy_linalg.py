"""NumPy rules: linear algebra (batched), einsum, tensor products, fft, convolve/correlate.

Written with the table helpers of ``numpy_rules`` (``_r``): each rule applies to arrays, Python
numbers and NumPy scalars where NumPy does, and its backward uses only functions with rules, so it is
differentiable again.

Conventions:
- complex values follow torch's convention: the gradient of a real loss with respect to a complex
  value is ``dL/dRe + i dL/dIm``; a real argument gets the real part (as ``torch.autograd`` does).
- functions that read one triangle of a matrix (``eigh``, ``eigvalsh``, ``cholesky``) get the exact
  derivative of what NumPy computes: the gradient lands on the triangle that is read (the other is 0).
  For a symmetric matrix built from parameters this equals the symmetrised convention of torch/JAX.
- where the derivative does not exist (repeated eigen- or singular values with eigenvector gradients,
  rank-deficient matrices for ``pinv``/``lstsq``) a GradientError says what to do.
"""
from __future__ import annotations

import ast
import string

from ..errors import GradientError
from .registry import ARRAY, NONDIFF, OBJECT, REAL, TUPLE, LIST, base, grad, nondiff, reads_sequence
from . import numpy_rules as _nr

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

if np is not None:
    np_like = _nr.np_like
    NS = dict(_nr.ns)

    def _r(fns, sig, **kw):
        """``numpy_rules._r`` with this module's namespace; parameters after a ``*`` are passed by
        keyword when the rule calls the function (NumPy 2's positional-only, keyword-only APIs)."""
        kw.setdefault("ns", NS)
        a = ast.parse(f"lambda {sig}: 0", mode="eval").body.args
        if a.kwonlyargs and "fwd" not in kw:
            pos = [x.arg for x in a.args]
            for f in fns:
                mod = (getattr(f, "__module__", None) or "numpy").replace("numpy", "np", 1)
                _nr._r([f], sig, fwd=f"{mod}.{f.__name__}({', '.join(pos + [f'{k.arg}={k.arg}' for k in a.kwonlyargs])})",
                       **kw)
            return
        _nr._r(fns, sig, **kw)

    def _cj(x):
        """``conj(x)``, skipped for real values (torch's convention conjugates the other factors)."""
        return np.conj(x) if np.iscomplexobj(x) else x

    def _swap(a):
        return np.swapaxes(a, -1, -2)

    def np_la_real_like(g, x):
        """``g`` as the gradient of ``x``: its real part when ``x`` is real (torch's convention for
        a real input of a complex function), then summed to ``x``'s shape and type."""
        if g is None:
            return None
        if np.iscomplexobj(g) and not np.iscomplexobj(x):
            g = g.real
        return np_like(g, x)

    def _parts(dy, n):
        """The output gradient of an ``n``-tuple result (a namedtuple: a tuple, a Record or None)."""
        if dy is None:
            return (None,) * n
        if hasattr(dy, "values") and not isinstance(dy, (tuple, list, np.ndarray)):
            dy = tuple(dy.values())
        return tuple(dy) + (None,) * (n - len(dy))

    # ------------------------------------------------------------------ einsum and products as einsum
    # Every product below is one einsum with fully explicit subscripts (letters only, the output
    # written out). The gradient of operand i is the einsum of the output gradient with the other
    # operands (conjugated), written to operand i's subscripts; a letter repeated in operand i (a
    # diagonal) gets an identity matrix linking it to a fresh letter, a letter of operand i found
    # nowhere else (summed out) gets a vector of ones. So the backward is an einsum: differentiable again.
    _LETTERS = string.ascii_letters

    def np_la_explicit(subscripts, shapes):
        """``subscripts`` (ellipsis and implicit output allowed) for operands of these shapes, with
        the ellipsis spelled in letters and the output written: ``(inputs, output)``."""
        s = subscripts.replace(" ", "")
        ins, arrow, out = s.partition("->")
        specs = ins.split(",")
        if len(specs) != len(shapes):
            raise GradientError(f"np.einsum: {len(specs)} operand subscripts for {len(shapes)} operands")
        free = [c for c in _LETTERS if c not in s]
        nell = max([len(sh) - len(sp.replace("...", "")) for sp, sh in zip(specs, shapes) if "..." in sp] or [0])
        ell = "".join(free[:nell])
        full = []
        for sp, sh in zip(specs, shapes):
            if "..." in sp:
                k = len(sh) - len(sp.replace("...", ""))
                sp = sp.replace("...", ell[nell - k:] if k else "")
            full.append(sp)
        if arrow:
            out = out.replace("...", ell)
        else:  # implicit output: the broadcast axes, then the letters used once, in order
            letters = "".join(full)
            out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
        return full, out

    def np_la_ein_plan(subscripts, shapes, i):
        """The einsum giving operand ``i``'s gradient: ``(subscripts, extra)``; its operands are the
        output gradient, the other operands, then the constants in ``extra`` (identities, ones)."""
        specs, out = np_la_explicit(subscripts, shapes)
        mine = specs[i]
        others = [sp for j, sp in enumerate(specs) if j != i]
        used = set(out) | set("".join(others))
        free = iter([c for c in _LETTERS if c not in "".join(specs) + out])
        sizes = {}
        for c, n in zip(mine, shapes[i]):
            sizes.setdefault(c, n)
        target, extra, ein, seen = [], [], [], set()
        for c in mine:
            if c in seen:  # a diagonal: a fresh letter tied to c by an identity
                f = next(free)
                target.append(f)
                extra.append(np.eye(sizes[c]))
                ein.append(c + f)
                continue
            seen.add(c)
            target.append(c)
            if c not in used:  # summed over in the forward: the gradient is constant along it
                extra.append(np.ones(sizes[c]))
                ein.append(c)
        return ",".join([out] + others + ein) + "->" + "".join(target), tuple(extra)

    def np_la_sum_to(g, x):
        """``g`` summed over the axes where ``x`` has size 1 (einsum broadcasts those)."""
        axes = tuple(k for k, (n, m) in enumerate(zip(np.shape(x), np.shape(g))) if n == 1 and m != 1)
        return np.sum(g, axis=axes, keepdims=True) if axes else g

    def np_la_ein_back(dy, subscripts, ops, i):
        """The gradient of operand ``i`` of ``np.einsum(subscripts, *ops)``."""
        x = ops[i]
        spec, extra = np_la_ein_plan(subscripts, [np.shape(o) for o in ops], i)
        others = [_cj(o) for j, o in enumerate(ops) if j != i]
        g = np.einsum(spec, dy, *others, *extra)
        return np_la_real_like(np_la_sum_to(g, x), x)

    def np_la_ein_grads(dy, subscripts, ops):
        return tuple([np_la_ein_back(dy, subscripts, ops, i) for i in range(len(ops))])

    # products written as einsums: a planner (no gradient) gives the subscripts
    def np_la_tensordot_spec(a, b, axes):
        na, nb = len(np.shape(a)), len(np.shape(b))
        if isinstance(axes, int):
            ia, ib = list(range(na - axes, na)), list(range(axes))
        else:
            ia, ib = axes
            ia, ib = ([ia], [ib]) if isinstance(ia, int) else (list(ia), list(ib))
        ia, ib = [k % na for k in ia], [k % nb for k in ib]
        la, lb = list(_LETTERS[:na]), list(_LETTERS[na:na + nb])
        for p, q in zip(ia, ib):
            lb[q] = la[p]
        out = [c for k, c in enumerate(la) if k not in ia] + [c for k, c in enumerate(lb) if k not in ib]
        return "".join(la) + "," + "".join(lb) + "->" + "".join(out)

    def np_la_inner_spec(a, b):
        na, nb = len(np.shape(a)), len(np.shape(b))
        if na == 0 or nb == 0:
            return _LETTERS[:na] + "," + _LETTERS[na:na + nb] + "->" + _LETTERS[:na + nb]
        la, lb = _LETTERS[:na - 1] + "Z", _LETTERS[na - 1:na + nb - 2] + "Z"
        return la + "," + lb + "->" + la[:-1] + lb[:-1]

    def np_la_kron_spec(a, b):
        """``kron``: both with as many axes as the larger (leading 1s), the output axes interleaved."""
        n = max(len(np.shape(a)), len(np.shape(b)))
        sa, sb = (1,) * (n - len(np.shape(a))) + np.shape(a), (1,) * (n - len(np.shape(b))) + np.shape(b)
        la, lb = _LETTERS[:n], _LETTERS[n:2 * n]
        return la + "," + lb + "->" + "".join(p + q for p, q in zip(la, lb)), sa, sb, \
            tuple(d for p, q in zip(sa, sb) for d in (p, q))

    def np_la_diag_sel(x, offset):
        """``diagonal(x, offset)`` of the last two axes is ``x`` contracted with this constant
        selector: ``E[t, i, j] = 1`` at ``i = t + max(-offset, 0)``, ``j = t + max(offset, 0)``."""
        n, m = np.shape(x)[-2:]
        r0, c0 = max(-offset, 0), max(offset, 0)
        k = max(min(n - r0, m - c0), 0)
        e = np.zeros((k, n, m))
        t = np.arange(k)
        e[t, t + r0, t + c0] = 1.0
        return e

    def np_la_kron_back(dy, a, b, i):
        spec, sa, sb, sy = np_la_kron_spec(a, b)
        g = np_la_ein_back(np.reshape(dy, sy), spec, (np.reshape(a, sa), np.reshape(b, sb)), i)
        x = a if i == 0 else b
        return np_la_real_like(np.reshape(g, np.shape(x)) if np.shape(x) else g, x)

    def np_la_vecdot_back(dy, a, b, axis, i):
        """``vecdot(a, b) = sum(conj(a) * b, axis)`` with broadcasting."""
        ops = (_cj(np.moveaxis(np.asarray(a), axis, -1)), np.moveaxis(np.asarray(b), axis, -1))
        g = np_la_ein_back(dy, "...i,...i->...", ops, i)
        g = np.moveaxis(g, -1, axis)
        return np_la_real_like(_cj(g) if i == 0 else g, a if i == 0 else b)

    nondiff(np_la_explicit, np_la_ein_plan, np_la_tensordot_spec, np_la_inner_spec, np_la_kron_spec,
            np_la_diag_sel, np.iscomplexobj)
    NS.update(np_la_ein_back=np_la_ein_back, np_la_ein_grads=np_la_ein_grads, np_la_real_like=np_la_real_like,
              np_la_tensordot_spec=np_la_tensordot_spec, np_la_inner_spec=np_la_inner_spec,
              np_la_diag_sel=np_la_diag_sel, np_la_vecdot_back=np_la_vecdot_back, np_la_kron_back=np_la_kron_back,
              _parts=_parts, _swap=_swap, _cj=_cj, np_matmul_back=_nr.np_matmul_back)

    def _vals(ks):
        return all(k in (ARRAY, REAL, NONDIFF) for k in ks) and (ARRAY in ks or REAL in ks)

    A0 = _nr.A0

    def _two(ks):
        """Two values (arrays or numbers), then constants of any kind (axes as lists or tuples)."""
        return len(ks) >= 2 and _vals(ks[:2])
    # results that are arrays or NumPy scalars depending on values: decided at run time
    _r([np.einsum], "subscripts, *operands",
       operands="np_la_ein_grads(dy, subscripts, operands)",
       kinds=lambda ks: bool(ks) and ks[0] == NONDIFF and _vals(ks[1:]), out=OBJECT)
    for _f, _sig in ((np.tensordot, "a, b, axes=2"), (np.linalg.tensordot, "a, b, *, axes=2")):
        _r([_f], _sig, kinds=_two, a="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 0)",
           b="np_la_ein_back(dy, np_la_tensordot_spec(a, b, axes), (a, b), 1)", out=OBJECT)
    _r([np.inner], "a, b", a="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 0)",
       b="np_la_ein_back(dy, np_la_inner_spec(a, b), (a, b), 1)", out=OBJECT)
    _r([np.kron], "a, b", a="np_la_kron_back(dy, a, b, 0)", b="np_la_kron_back(dy, a, b, 1)", out=_nr._out)
    # vdot: the flattened arrays, the first conjugated
    _r([np.vdot], "a, b", out=REAL,
       a="np_la_real_like(np.reshape(np.conj(dy) * np.reshape(b, np.shape(a)), np.shape(a)), a)",
       b="np_la_real_like(np.reshape(dy * np.reshape(_cj(a), np.shape(b)), np.shape(b)), b)")
    for _f in (np.vecdot, np.linalg.vecdot):
        _r([_f], "x1, x2, *, axis=-1", x1="np_la_vecdot_back(dy, x1, x2, axis, 0)",
           x2="np_la_vecdot_back(dy, x1, x2, axis, 1)", out=OBJECT)
    _r([np.linalg.outer], "x1, x2", x1="dy @ x2", x2="dy.T @ x1")
    _r([np.linalg.matmul], "x1, x2", x1="np_matmul_back(dy, x1, x2, 0)", x2="np_matmul_back(dy, x1, x2, 1)",
       out=OBJECT)
    _r([np.linalg.matrix_transpose], "x", x="_swap(dy)", kinds=A0)
    _r([np.linalg.diagonal], "x, *, offset=0", kinds=A0,
       x="np_la_ein_back(dy, '...ij,tij->...t', (x, np_la_diag_sel(x, offset)), 0)")
    _r([np.linalg.trace], "x, *, offset=0, dtype=None", kinds=A0, out=OBJECT,
       x="np_la_ein_back(dy, '...ij,tij->...', (x, np_la_diag_sel(x, offset)), 0)")
