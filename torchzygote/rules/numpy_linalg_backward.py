"""Backward helpers of the NumPy linear algebra rules (rules/numpy_linalg.py; the FFT, convolution
and polynomial ones are in numpy_signal_backward.py), as FunctionsManual.cpp sits beside derivatives.yaml. Each uses only
functions with rules (or helpers marked nondiff there), so a gradient is differentiable again."""
from __future__ import annotations

import string

from ..errors import GradientError
from . import numpy_rules as _nr

np = _nr.np
np_like = getattr(_nr, "np_like", None)   # (numpy_rules defines it where NumPy is installed)

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

def _eye_like(x):
    return np.eye(np.shape(x)[-1])

def np_la_tri_masks(n, lower):
    """Constant masks: the strict triangle that is read (lower or upper) and the diagonal."""
    i = np.arange(n)
    strict = (i[:, None] > i[None, :]) if lower else (i[:, None] < i[None, :])
    return strict.astype(float), np.eye(n)

def np_la_to_triangle(g, lower):
    """A gradient ``g`` with respect to the symmetric matrix a function builds from one triangle
    of its argument, as the gradient of that argument: each read entry off the diagonal stands
    for two entries of the symmetric matrix, the other triangle is not read."""
    strict, eye = np_la_tri_masks(np.shape(g)[-1], lower)
    return (g + _swap(g)) * strict + g * eye

def np_la_gap(w, what):
    """``1 / (w_j - w_i)`` off the diagonal, 0 on it; a GradientError where two values are equal
    (there the eigen- or singular vectors are not unique: their derivative does not exist)."""
    np_la_check_distinct(w, what)
    d = w[..., None, :] - w[..., :, None]
    eye = np.eye(np.shape(w)[-1])
    return np.where(eye == 1, 0.0, 1.0 / np.where(eye == 1, 1.0, d))

def np_la_check_distinct(w, what):
    d = np.abs(w[..., None, :] - w[..., :, None])
    scale = max(float(np.max(np.abs(w))) if np.size(w) else 1.0, 1e-300)
    if np.any((d <= 1e-10 * scale) & (np.eye(np.shape(w)[-1]) == 0)):
        raise GradientError(f"the gradient through the {what} of a matrix with repeated values does not "
                            f"exist; use only the values (eigvalsh, svdvals), or perturb the matrix")

def np_la_check_rank(s, what):
    """A GradientError when singular values ``s`` show a rank-deficient matrix."""
    tol = np.max(s, axis=-1, keepdims=True) * max(np.shape(s)[-1], 1) * np.finfo(float).eps * 10
    if np.any(s <= tol):
        raise GradientError(f"{what} of a rank-deficient matrix is not differentiable (its rank jumps "
                            f"under perturbation); regularise it (add a small multiple of the identity) "
                            f"or drop the dependent rows/columns")

def np_la_real_only(a, what):
    """The decompositions' rules are written for real matrices: a complex one is a GradientError
    rather than a wrong number."""
    if np.iscomplexobj(a):
        raise GradientError(f"torchzygote differentiates {what} of real matrices only; split a complex "
                            f"problem into real and imaginary parts")

def np_la_slogdet_back(dy, a):
    np_la_real_only(a, "np.linalg.slogdet")
    gl = _parts(dy, 2)[1]   # the sign has no gradient
    if gl is None:
        return None
    return np.asarray(gl)[..., None, None] * _swap(np.linalg.inv(a))

def np_la_pinv_grad(g, a, p):
    """The gradient of ``a`` for the output gradient ``g`` of ``p = pinv(a)`` (full rank: the
    projector terms matter for non-square ``a``)."""
    pt = _swap(p)
    ga = -(pt @ g @ pt)
    m, n = np.shape(a)[-2:]
    if m != n:
        q = np.eye(m) - a @ p            # projector onto the complement of a's range
        ga = ga + q @ _swap(g) @ p @ pt
        r = np.eye(n) - p @ a            # projector onto a's null space
        ga = ga + pt @ p @ _swap(g) @ r
    return ga

def np_la_pinv_back(dy, a, y, hermitian):
    np_la_real_only(a, "np.linalg.pinv")
    np_la_check_rank(np.linalg.svd(a, compute_uv=False), "np.linalg.pinv")
    g = np_la_pinv_grad(dy, a, y)
    return np_la_to_triangle(g, True) if hermitian else g

def np_la_eigh_back(dy, a, uplo, y):
    np_la_real_only(a, "np.linalg.eigh")
    gw, gv = _parts(dy, 2)
    if gw is None and gv is None:
        return None
    w, v = y[0], y[1]
    inner = 0.0
    if gw is not None:
        inner = gw[..., None] * _eye_like(v)
    if gv is not None:
        inner = inner + np_la_gap(w, "eigenvectors") * (_swap(v) @ gv)
    return np_la_to_triangle(v @ inner @ _swap(v), uplo in ("L", "l"))

def np_la_eigvalsh_back(dy, a, uplo):
    np_la_real_only(a, "np.linalg.eigvalsh")
    v = np.linalg.eigh(a, uplo)[1]
    return np_la_to_triangle((v * dy[..., None, :]) @ _swap(v), uplo in ("L", "l"))

def np_la_svd_grad(gu, gs, gvh, u, s, vh):
    """The gradient of ``a = u diag(s) vh`` (thin: k = min(m, n) columns) from those of its factors."""
    m, n, k = np.shape(u)[-2], np.shape(vh)[-1], np.shape(s)[-1]
    inner = 0.0
    if gs is not None:
        inner = gs[..., None] * np.eye(k)
    if gu is not None or gvh is not None:
        f = np_la_gap(s * s, "singular vectors")
        if gu is not None:
            j = _swap(u) @ gu
            inner = inner + f * (j - _swap(j)) * s[..., None, :]
        if gvh is not None:
            kk = vh @ _swap(gvh)
            inner = inner + s[..., :, None] * (f * (kk - _swap(kk)))
    g = u @ inner @ vh
    if (gu is not None and m > k) or (gvh is not None and n > k):
        np_la_check_rank(s, "the singular vectors")
    if gu is not None and m > k:   # the part of gu outside u's span
        g = g + ((gu - u @ (_swap(u) @ gu)) / s[..., None, :]) @ vh
    if gvh is not None and n > k:
        g = g + u @ ((gvh - (gvh @ _swap(vh)) @ vh) / s[..., :, None])
    return g

def np_la_svd_back(dy, a, full_matrices, compute_uv, hermitian, y):
    np_la_real_only(a, "np.linalg.svd")
    if not compute_uv:
        u, s, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        gu, gs, gvh = None, dy, None
    else:
        u, s, vh = y[0], y[1], y[2]
        gu, gs, gvh = _parts(dy, 3)
        k = np.shape(s)[-1]
        if full_matrices and (np.shape(u)[-1] > k or np.shape(vh)[-2] > k):
            # the extra columns of u (rows of vh) are any basis of a complement: no derivative
            if (gu is not None and np.any(gu[..., k:] != 0)) or (gvh is not None and np.any(gvh[..., k:, :] != 0)):
                raise GradientError("np.linalg.svd(full_matrices=True) of a non-square matrix: the extra "
                                    "singular vectors are not unique, so they have no gradient; use "
                                    "full_matrices=False")
            u, vh = u[..., :k], vh[..., :k, :]
            gu = gu[..., :k] if gu is not None else None
            gvh = gvh[..., :k, :] if gvh is not None else None
    if gu is None and gs is None and gvh is None:
        return None
    g = np_la_svd_grad(gu, gs, gvh, u, s, vh)
    return np_la_to_triangle(g, True) if hermitian else g

def np_la_svdvals_back(dy, x):
    np_la_real_only(x, "np.linalg.svdvals")
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return (u * dy[..., None, :]) @ vh

def np_la_cholesky_back(dy, a, upper, y):
    """``a = l l^T`` from one triangle of ``a``: ``l^-T Phi(l^T gl) l^-1`` (Phi: the lower triangle,
    half the diagonal), put on the triangle that is read."""
    np_la_real_only(a, "np.linalg.cholesky")
    l, gl = (_swap(y), _swap(dy)) if upper else (y, dy)
    strict, eye = np_la_tri_masks(np.shape(l)[-1], True)
    gl = gl * (strict + eye)
    p = _swap(l) @ gl
    li = np.linalg.inv(l)
    return np_la_to_triangle(_swap(li) @ (p * strict + 0.5 * p * eye) @ li, not upper)

def np_la_qr_square(gq, gr, q, r):
    """``a = q r`` with ``r`` square (m >= n): ``(gq + q copyltu(M)) r^-T``, ``M = r gr^T - gq^T q``."""
    n = np.shape(r)[-1]
    strict, eye = np_la_tri_masks(n, True)
    mm = 0.0
    if gr is not None:
        mm = r @ _swap(gr)
    if gq is not None:
        mm = mm - _swap(gq) @ q
    low = mm * strict
    b = q @ (low + _swap(low) + mm * eye)
    if gq is not None:
        b = b + gq
    return _swap(np.linalg.solve(r, _swap(b)))

def np_la_qr_back(dy, a, mode, y):
    np_la_real_only(a, "np.linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise GradientError(f"np.linalg.qr(mode={mode!r}) has no gradient; use mode='reduced'")
    if mode == "r":
        q, r = np.linalg.qr(a)
        gq, gr = None, dy[..., :np.shape(r)[-2], :]
    else:
        q, r = y[0], y[1]
        gq, gr = _parts(dy, 2)
    m, n = np.shape(a)[-2:]
    if mode == "complete" and m > n:
        if gq is not None and np.any(gq[..., n:] != 0):
            raise GradientError("np.linalg.qr(mode='complete') of a tall matrix: the extra columns of q "
                                "are not unique, so they have no gradient; use mode='reduced'")
        q, r = q[..., :n], r[..., :n, :]
        gq = gq[..., :n] if gq is not None else None
        gr = gr[..., :n, :] if gr is not None else None
    if gq is None and gr is None:
        return None
    if m >= n:
        return np_la_qr_square(gq, gr, q, r)
    # wide: a = [x | z] with x = q r1 square, z = q r2; z's part of r moves gq
    r1, r2 = r[..., :m], r[..., m:]
    gr1, gr2 = (gr[..., :m], gr[..., m:]) if gr is not None else (None, None)
    z = a[..., m:]
    if gr2 is not None:
        gq = z @ _swap(gr2) if gq is None else gq + z @ _swap(gr2)
    gx = np_la_qr_square(gq, gr1, q, r1)
    g = gx @ np.eye(m, n)
    if gr2 is not None:
        g = g + (q @ gr2) @ np.eye(n - m, n, m)
    return g

def np_la_lstsq_back(dy, a, b, y, which):
    """``x = pinv(a) b`` (full rank); the residuals ``|a x - b|^2`` at the optimum (their gradient
    holds x fixed); the singular values of ``a``."""
    np_la_real_only(a, "np.linalg.lstsq")
    gx, gres, _, gs = _parts(dy, 4)
    x = y[0]
    np_la_check_rank(np.linalg.svd(a, compute_uv=False), "np.linalg.lstsq")
    vec = len(np.shape(b)) == 1
    b2, x2 = (b[:, None], x[:, None]) if vec else (b, x)
    g = None
    if gx is not None:
        gx2 = gx[:, None] if vec else gx
        p = np.linalg.pinv(a)
        g = np_la_pinv_grad(gx2 @ _swap(b2), a, p) if which == 0 else _swap(p) @ gx2
    if gres is not None and np.size(gres):
        rr = (a @ x2 - b2) * gres
        gr = 2.0 * rr @ _swap(x2) if which == 0 else -2.0 * rr
        g = gr if g is None else g + gr
    if gs is not None and which == 0:
        gsv = np_la_svdvals_back(gs, a)
        g = gsv if g is None else g + gsv
    if g is not None and vec and which == 1:
        g = g[:, 0]
    return g

def np_la_matrix_power_back(dy, a, n):
    np_la_real_only(a, "np.linalg.matrix_power")
    if n == 0:
        return None
    if n < 0:
        b = np.linalg.inv(a)
        gb = np_la_matrix_power_back(dy, b, -n)
        return -(_swap(b) @ gb @ _swap(b))
    at = _swap(a)
    g = dy @ np.linalg.matrix_power(at, n - 1)
    for k in range(1, n):
        g = g + np.linalg.matrix_power(at, k) @ dy @ np.linalg.matrix_power(at, n - 1 - k)
    return g

def np_la_multi_dot_back(dy, arrays):
    """Each factor's gradient: the product of those before it (transposed), ``dy``, and the product
    of those after it (transposed); a 1-D first (last) factor is a row (column). Complex factors are
    conjugated (torch's convention)."""
    ms = [_cj(np.asarray(m)) for m in arrays]
    first, last = len(np.shape(ms[0])) == 1, len(np.shape(ms[-1])) == 1
    if first:
        ms[0] = np.reshape(ms[0], (1, -1))
    if last:
        ms[-1] = np.reshape(ms[-1], (-1, 1))
    d = np.reshape(dy, (np.shape(ms[0])[0], np.shape(ms[-1])[1]))
    out = []
    for i in range(len(ms)):
        g = d
        if i > 0:
            g = _swap(np.linalg.multi_dot(ms[:i]) if i > 1 else ms[0]) @ g
        if i < len(ms) - 1:
            g = g @ _swap(np.linalg.multi_dot(ms[i + 1:]) if i < len(ms) - 2 else ms[-1])
        out.append(np.reshape(g, np.shape(arrays[i])))
    return tuple(out)

def np_la_tensorinv_back(dy, a, y, ind):
    n = int(np.prod(np.shape(a)[:ind]))
    y2 = np.reshape(y, (-1, n))
    return np.reshape(_nr.np_inv_back(np.reshape(dy, np.shape(y2)), y2), np.shape(a))

def np_la_tensorsolve_order(a, b, axes):
    """The axis order tensorsolve moves ``a`` to (its ``axes`` last)."""
    order = list(range(len(np.shape(a))))
    for k in axes or ():
        order.remove(k % len(order))
        order.append(k % len(order))
    return order

def np_la_tensorsolve_back(dy, a, b, y, axes, which):
    a, y = _cj(a), _cj(y)   # (complex: torch's convention)
    order = np_la_tensorsolve_order(a, b, axes)
    at = np.transpose(a, order)
    nb = int(np.prod(np.shape(b)))
    a2 = np.reshape(at, (nb, -1))
    gb = np.linalg.solve(_swap(a2), np.reshape(dy, (-1,)))
    if which == 1:
        return np.reshape(gb, np.shape(b))
    ga = -(gb[:, None] * np.reshape(y, (-1,))[None, :])
    return np.transpose(np.reshape(ga, np.shape(at)), np.argsort(order))

def np_la_cross_back(dy, a, b, axisa, axisb, axisc, axis, i):
    """``c = a x b``: ``ga = conj(b) x dy``, ``gb = dy x conj(a)`` (3-vectors)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    if np.shape(a)[axisa] != 3 or np.shape(b)[axisb] != 3:
        raise GradientError("np.cross of 2-vectors (deprecated in NumPy 2) has no gradient rule; "
                            "append a zero third component")
    if i == 0:
        return np_la_real_like(np.cross(_cj(b), dy, axisa=axisb, axisb=axisc, axisc=axisa), a)
    return np_la_real_like(np.cross(dy, _cj(a), axisa=axisc, axisb=axisa, axisc=axisb), b)

# Conventions (torch's): the 2-norm (and 'fro') of a zero vector has gradient 0; at ties the
# inf/-inf/1/-1 norms split the gradient evenly over the entries (rows, columns) that attain it;
# |x| at 0 has gradient 0 (ord 1). The spectral norms need a simple extreme singular value, the
# nuclear norm a full-rank matrix (else a GradientError: the derivative does not exist). Complex
# entries: x / |x| and sign(x) are torch's gradients; the singular-value norms are real-only.
def np_la_vnorm_back(dy, x, ord, axis, keepdims, y):
    """A vector norm over ``axis`` (None: all entries; an int or a tuple)."""
    dy = _nr.np_re(dy)   # (a norm is real)
    dye, ye = _nr._expand(dy, x, axis, keepdims), _nr._expand(y, x, axis, keepdims)
    if ord is None or ord == 2:
        return dye * np.where(ye == 0, 0.0, x / np.where(ye == 0, 1.0, ye))
    if ord == 1:
        return dye * np.sign(x)
    if ord == 0:   # a count of nonzero entries
        return None
    if ord == np.inf or ord == -np.inf:
        mask = (np.abs(x) == ye).astype(float)
        return dye * np.sign(x) * mask / np.sum(mask, axis=axis, keepdims=True)
    if ord < 1 and np.any(x == 0):
        raise GradientError(f"the {ord}-norm has an infinite derivative at a zero entry")
    return dye * np.sign(x) * (np.abs(x) / np.where(ye == 0, 1.0, ye)) ** (ord - 1)

def np_la_mnorm_back(dy, x, ord, axes, keepdims, y):
    """A matrix norm over the two ``axes``."""
    dy = _nr.np_re(dy)   # (a norm is real)
    r, c = axes
    xm = np.moveaxis(x, (r, c), (-2, -1))
    if keepdims:
        dm, ym = np.moveaxis(dy, (r, c), (-2, -1)), np.moveaxis(y, (r, c), (-2, -1))
    else:
        dm, ym = np.asarray(dy)[..., None, None], np.asarray(y)[..., None, None]
    if ord is None or ord == "fro":
        g = xm * np.where(ym == 0, 0.0, dm / np.where(ym == 0, 1.0, ym))
    elif ord == "nuc" or ord == 2 or ord == -2:
        np_la_real_only(x, f"the matrix norm ord={ord!r}")
        u, s, vh = np.linalg.svd(xm, full_matrices=False)
        if ord == "nuc":
            np_la_check_rank(s, "the nuclear norm")
            g = dm * (u @ vh)
        else:
            j = 0 if ord == 2 else np.shape(s)[-1] - 1
            if np.shape(s)[-1] > 1:
                np_la_check_distinct(s[..., [j, j - 1 if j else 1]], "extreme singular vector (spectral norm)")
            g = dm * (u[..., :, j:j + 1] @ vh[..., j:j + 1, :])
    elif ord in (1, -1, np.inf, -np.inf):   # sign(x) = x / |x|: right for complex entries too
        ax = -2 if ord in (1, -1) else -1   # columns' sums (1) or rows' sums (inf)
        mask = (np.sum(np.abs(xm), axis=ax, keepdims=True) == ym).astype(float)
        g = dm * np.sign(xm) * mask / np.sum(mask, axis=-1 if ax == -2 else -2, keepdims=True)
    else:
        raise GradientError(f"no gradient rule for the matrix norm ord={ord!r}")
    return np.moveaxis(g, (-2, -1), (r, c))

def np_la_norm_back(dy, x, ord, axis, keepdims, y):
    """``np.linalg.norm``: a vector norm (1-D, an int axis, or ord None over all entries) or a
    matrix norm (2-D, or two axes)."""
    if axis is None:
        if ord is None or len(np.shape(x)) == 1:
            return np_la_vnorm_back(dy, x, ord, None, keepdims, y)
        return np_la_mnorm_back(dy, x, ord, (0, 1), keepdims, y)
    if isinstance(axis, int) or len(axis) == 1:
        return np_la_vnorm_back(dy, x, ord, axis if isinstance(axis, int) else axis[0], keepdims, y)
    return np_la_mnorm_back(dy, x, ord, tuple(axis), keepdims, y)
