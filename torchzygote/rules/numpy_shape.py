"""NumPy rules: shape, joining, splitting, flipping and indexing functions.

Written with the table helpers of ``numpy_rules`` (``_r``): each rule applies to arrays, Python
numbers and NumPy scalars where NumPy does, and its backward uses only functions with rules, so it is
differentiable again.

Most of these functions only copy entries. Where the copy pattern is irregular (repeat, tile, pad,
take, delete, diag...), the backward runs the function once more on the *flat indices* of its
argument (``np_shape_src``): that says which entry each output entry came from, and the gradient is
the output gradient added at those sources (``np_shape_copy_back``, through ``np_index_back``, whose
own rule reads the same positions). That is exact for every mode NumPy implements by copying, and
repeated sources accumulate.

``np.meshgrid`` and ``np.broadcast_arrays`` take keyword arguments after ``*args``, which rule
signatures cannot bind: they are Python stand-ins (reshapes and broadcasts) lifted in their place.
"""
from __future__ import annotations

from ..errors import GradientError
from .container_backs import seq_back
from .numpy_rules import _r, np, np_index_back, np_like, np_seq_back, np_sum_to_shape, ns
from .registry import ARRAY, LIST, REAL, TUPLE, many, nondiff, reads_metadata, some

if np is not None:
    V0 = ("A|R", ...)   # a value first; the rest are axes, shapes, indices
    A0 = ("A", ...)
    S0 = ("L|P|PT|PR", ...)   # a list or tuple of values first
    S1 = ("*", "L|P|PT|PR|A", ...)
    MANY = (many("A|R|N"),)   # (*arrays)
    MANY_OUT = lambda ks: ARRAY if len(ks) == 1 else TUPLE  # noqa: E731

    def np_shape_is_float(v):
        """Whether ``v`` carries a gradient: a float or complex number or array (ints, bools, indices don't)."""
        if isinstance(v, np.ndarray):
            return v.dtype.kind in "fc"
        return isinstance(v, (float, complex, np.inexact))

    def np_shape_src(fn, args, pos, zero=(), **kw):
        """For a function that only copies entries of ``args[pos]`` (filling others with zeros): where
        each entry of its result comes from, as a flat index into ``args[pos]`` (-1: a filled zero).
        ``zero``: positions of other arguments replaced by zeros of their shape (values it inserts)."""
        xs = list(args)
        xs[pos] = np.arange(1, np.size(args[pos]) + 1).reshape(np.shape(args[pos]))
        for j in zero:
            xs[j] = np.zeros(np.shape(xs[j]), dtype=int)
        return np.asarray(fn(*xs, **kw)) - 1

    def np_shape_copy_back(dy, x, src):
        """The gradient of ``x`` when output entry ``p`` is ``x.flat[src.flat[p]]`` (``src`` -1: no
        source): ``dy`` added at the sources, in ``x``'s type (None for an integer ``x``)."""
        if dy is None or not np_shape_is_float(x):
            return None
        s = np.ravel(src)
        keep = s >= 0
        g = np_index_back(np.ravel(x), s[keep], np.ravel(dy)[keep])
        return np_like(np_shape_reshape(g, x), x)

    def np_shape_reshape(g, x):
        """``g`` reshaped to ``x``'s shape (to a scalar by a sum of its one entry where ``x`` is 0-d)."""
        if np.shape(g) == np.shape(x):
            return g
        return np.reshape(g, np.shape(x)) if np.ndim(x) else np.sum(g)

    def np_shape_fit(g, item):
        """``g`` in ``item``'s shape: reshaped where it has the same size (the item was used in
        another shape: raveled, made 2-D), else summed over the axes it was broadcast along."""
        return np_shape_reshape(g, item) if np.size(g) == np.size(item) else np_sum_to_shape(g, item)

    def np_shape_piece(ctx, g, item):
        """The gradient ``g`` (in the shape the item was used in) of one argument or item of a list
        or tuple: a list gets it routed to its items, a number or array its own type and shape."""
        if g is None:
            return None
        if isinstance(item, (list, tuple)):
            return np_seq_back(ctx, np_shape_fit(g, item), item)
        if not np_shape_is_float(item):
            return None
        return np_like(np_shape_fit(g, item), item)

    def np_shape_items_back(ctx, seq, gs):
        """Per-item gradients ``gs`` routed to the list or tuple ``seq``."""
        return seq_back(ctx, seq, tuple([np_shape_piece(ctx, gs[i], seq[i]) for i in range(len(seq))]))

    # ------------------------------------------------------------------------------------ joining
    def np_shape_join_plan(how, seq, axis=0):
        """``(shapes, axis)``: the shape each item had when it was concatenated, and the axis, for
        concatenate (``axis`` None: flattened), hstack, vstack, dstack and column_stack."""
        arrs = [np.asarray(x) for x in seq]
        if how == "concatenate":
            if axis is None:
                return [(a.size,) for a in arrs], 0
            return [a.shape for a in arrs], axis
        if how == "hstack":
            arrs = [np.atleast_1d(a) for a in arrs]
            return [a.shape for a in arrs], 0 if arrs and arrs[0].ndim == 1 else 1
        if how == "vstack":
            return [np.atleast_2d(a).shape for a in arrs], 0
        if how == "dstack":
            return [np.atleast_3d(a).shape for a in arrs], 2
        if how == "column_stack":
            return [np.atleast_2d(a).shape if a.ndim >= 2 else (a.size, 1) for a in arrs], 1
        raise ValueError(how)

    def np_shape_cat_pieces(dy, plan):
        """``dy`` cut along the joined axis into the items' pieces (each in the shape it was joined in)."""
        shapes, axis = plan
        ax = axis % np.ndim(dy)
        out = []
        start = 0
        for s in shapes:
            n = s[ax] if len(s) > ax else 1
            out.append(dy[(slice(None),) * ax + (slice(start, start + n),)])
            start += n
        return out

    def np_shape_cat_back(ctx, dy, seq, plan):
        return np_shape_items_back(ctx, seq, np_shape_cat_pieces(dy, plan))

    def np_shape_append_back(ctx, dy, arr, values, axis, which):
        """``np.append(arr, values, axis)``: the gradient of ``arr`` (which 0) or ``values`` (1)."""
        pieces = np_shape_cat_pieces(dy, np_shape_join_plan("concatenate", (arr, values), axis))
        return np_shape_piece(ctx, pieces[which], (arr, values)[which])

    def np_shape_block_src(arrays):
        """``np.block`` applied to the flat indices of its leaves, numbered one after another."""
        count = [0]

        def number(b):
            if isinstance(b, list):
                return [number(c) for c in b]
            n = np.size(b)
            count[0] += n
            return np.arange(count[0] - n, count[0]).reshape(np.shape(b))
        return np.block(number(arrays))

    def np_shape_block_back(ctx, dy, arrays, src):
        """The gradients of ``np.block``'s leaves: ``dy`` in the leaves' order, cut into their shapes."""
        flat = np.ravel(dy)[np.argsort(np.ravel(src))]
        return np_shape_block_walk(ctx, flat, arrays, 0)[0]

    def np_shape_block_walk(ctx, flat, b, start):
        """``(gradient of b, next start)``: nested lists are structure, anything else a leaf."""
        if isinstance(b, list):
            gs = []
            for i in range(len(b)):
                g, start = np_shape_block_walk(ctx, flat, b[i], start)
                gs.append(g)
            return seq_back(ctx, b, tuple(gs)), start
        n = np.size(b)
        return np_shape_piece(ctx, flat[start:start + n], b), start + n

    NS = dict(ns)
    NS.update(np_shape_reshape=np_shape_reshape, np_shape_cat_back=np_shape_cat_back,
              np_shape_join_plan=np_shape_join_plan,
              np_shape_append_back=np_shape_append_back, np_shape_block_back=np_shape_block_back,
              np_shape_block_src=np_shape_block_src, np_shape_copy_back=np_shape_copy_back,
              np_shape_src=np_shape_src, np_shape_items_back=np_shape_items_back)
    S = dict(ns=NS, maybe_none=True)
    _r([np.concatenate], "arrays, axis=0, out=None",
       arrays="np_shape_cat_back(ctx, dy, arrays, np_shape_join_plan('concatenate', arrays, axis))", kinds=S0,
       reads_sequence=True, linear=True, **S)
    JOINS = [(np.hstack, "hstack"), (np.vstack, "vstack"), (np.dstack, "dstack"), (np.column_stack, "column_stack")]
    if hasattr(np, "row_stack") and np.row_stack is not np.vstack:  # a deprecated alias of vstack
        JOINS.append((np.row_stack, "vstack"))
    for f, how in JOINS:
        _r([f], "tup",
           tup=f"np_shape_cat_back(ctx, dy, tup, np_shape_join_plan({how!r}, tup))", kinds=S0, reads_sequence=True,
           linear=True, **S)
    _r([np.block], "arrays", arrays="np_shape_block_back(ctx, dy, arrays, np_shape_block_src(arrays))",
       kinds=("L", ...), linear=True, **S)
    # (linear in several arguments together: each one's term has the others' zero, np_t_part)
    _r([np.append], "arr, values, axis=None", arr="np_shape_append_back(ctx, dy, arr, values, axis, 0)",
       values="np_shape_append_back(ctx, dy, arr, values, axis, 1)",
       kinds=some("A|R", among="A|R|L|P|PT|PR|N"),
       jvp={p: f"np_t_part(np.append, (arr, values, axis), {i}, d{p}, (0, 1))" for i, p in enumerate(("arr", "values"))},
       **S)

    # ---------------------------------------------------------------------------------- splitting
    def np_shape_split_back(ctx, y, ary, axis):
        """The pieces' gradients (from the output list's slot; zeros for unused pieces) joined again."""
        slot = ctx.peek(y)
        if slot is None or not np_shape_is_float(ary) or all(g is None for g in slot):
            return None
        gs = [slot[i] if slot[i] is not None else np.zeros_like(y[i]) for i in range(len(y))]
        return np.concatenate(gs, axis)

    def np_shape_unstack_back(dy, x, axis):
        """``np.unstack``: its output is a tuple, whose gradient has None for unused pieces."""
        if dy is None or not np_shape_is_float(x) or all(g is None for g in dy):
            return None
        return np.stack([dy[i] if dy[i] is not None else np_shape_zero_piece(x, axis) for i in range(len(dy))],
                        axis)

    def np_shape_zero_piece(x, axis):
        """Zeros in the shape of one piece of ``np.unstack(x, axis=axis)``."""
        return np.zeros(np.delete(np.shape(x), axis % np.ndim(x)))

    NS.update(np_shape_split_back=np_shape_split_back, np_shape_unstack_back=np_shape_unstack_back)
    SPLIT = dict(kinds=A0, out=LIST, effect=True, linear=True, **S)   # (a list of pieces: the tangent's pieces)
    _r([np.split, np.array_split], "ary, indices_or_sections, axis=0",
       ary="np_shape_split_back(ctx, y, ary, axis)", **SPLIT)
    _r([np.hsplit], "ary, indices_or_sections",
       ary="np_shape_split_back(ctx, y, ary, 1 if len(np.shape(ary)) > 1 else 0)", **SPLIT)
    _r([np.vsplit], "ary, indices_or_sections", ary="np_shape_split_back(ctx, y, ary, 0)", **SPLIT)
    _r([np.dsplit], "ary, indices_or_sections", ary="np_shape_split_back(ctx, y, ary, 2)", **SPLIT)
    if hasattr(np, "unstack"):
        _r([np.unstack], "x, axis=0", fwd="np.unstack(x, axis=axis)", x="np_shape_unstack_back(dy, x, axis)",
           kinds=A0, out=TUPLE, linear=True, **S)

    # --------------------------------------------------------------------------- flipping, moving
    def np_shape_neg(shift):
        """The shift that undoes ``np.roll``'s (one per axis for a tuple)."""
        return tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift

    def np_shape_rollaxis(ndim, axis, start):
        """The axis order ``np.rollaxis`` makes (its backward transposes by the inverse)."""
        axis, start = axis % ndim, start + ndim if start < 0 else start
        order = [i for i in range(ndim) if i != axis]
        order.insert(start - 1 if axis < start else start, axis)
        return order

    def np_shape_pad_src(array, pad_width, mode, reflect_type):
        """Where each entry of ``np.pad``'s result comes from (-1 - i: the i-th of the ``(ndim, 2)``
        constants); modes that compute new values (mean, linear_ramp, odd reflection) are refused."""
        if callable(mode) or mode not in ("constant", "edge", "reflect", "symmetric", "wrap"):
            raise GradientError(f"torchzygote cannot differentiate np.pad with mode={mode!r}; modes constant, "
                                "edge, reflect, symmetric and wrap are supported (for a mean or a ramp, pad "
                                "with mode='edge' and compute the values with differentiable numpy)")
        if mode in ("reflect", "symmetric") and reflect_type not in (None, "even"):
            raise GradientError("torchzygote cannot differentiate np.pad with reflect_type='odd'; use the "
                                "default reflect_type='even', or build the odd extension with np.flip")
        nd = np.ndim(array)
        idx = np.arange(np.size(array)).reshape(np.shape(array))
        if mode != "constant":
            return np.pad(idx, pad_width, mode=mode)
        marks = -1 - np.arange(2 * nd).reshape(nd, 2)
        return np.pad(idx, pad_width, mode="constant", constant_values=marks) if nd else idx

    def np_shape_pad(array, pad_width, mode="constant", **kw):
        """``np.pad``, passing on only the keywords given (numpy refuses those its mode does not take)."""
        return np.pad(array, pad_width, mode, **{k: v for k, v in kw.items() if v is not None})

    def np_shape_pad_values_back(ctx, dy, array, src, constant_values):
        """The gradient of ``np.pad``'s ``constant_values``: ``dy`` summed over the entries each of the
        ``(ndim, 2)`` constants filled, then summed the way numpy spread the value it was given (one
        number, a ``(before, after)`` pair, or pairs per axis)."""
        if dy is None or constant_values is None or not (np_shape_is_float(constant_values) or
                                                        isinstance(constant_values, (list, tuple))):
            return None
        nd = np.ndim(array)
        marks = np.reshape(-1 - np.arange(2 * nd), (2 * nd,) + (1,) * np.ndim(src))
        g = np.sum(np.where(np.expand_dims(src, 0) == marks, np.expand_dims(dy, 0), 0.0),
                   axis=tuple(range(1, 1 + np.ndim(src))))
        g = np.reshape(g, (nd, 2))
        shape = np.shape(constant_values)
        if np.size(constant_values) == 1:
            g = np_shape_reshape(np.sum(g), constant_values)
        elif np.size(constant_values) == 2 and shape != (2, 1):
            g = np_shape_reshape(np.sum(g, axis=0), constant_values)
        return np_shape_piece(ctx, g, constant_values)

    def np_shape_pad_t(d, array, pad_width, mode, stat_length, constant_values, end_values, reflect_type, which):
        """``np.pad`` copies ``array`` and the constants (the modes its pullback takes): linear in the two
        together, the tangent of ``array`` (``which`` 0) or of ``constant_values`` (1), the other's zero."""
        np_shape_pad_src(array, pad_width, mode, reflect_type)   # (its errors)
        parts = [np.zeros(np.shape(array)), None if constant_values is None else np.zeros(np.shape(constant_values))]
        parts[which] = d
        return np_shape_pad(parts[0], pad_width, mode, stat_length=stat_length, constant_values=parts[1],
                            end_values=end_values, reflect_type=reflect_type)

    NS.update(np_shape_neg=np_shape_neg, np_shape_rollaxis=np_shape_rollaxis, np_shape_pad_src=np_shape_pad_src,
              np_shape_pad=np_shape_pad, np_shape_pad_values_back=np_shape_pad_values_back, np_shape_pad_t=np_shape_pad_t)
    _r([np.flip], "m, axis=None", m="np_like(np.flip(dy, axis), m)", kinds=V0, linear=True)
    _r([np.flipud], "m", m="np.flipud(dy)", kinds=A0, linear=True)
    _r([np.fliplr], "m", m="np.fliplr(dy)", kinds=A0, linear=True)
    _r([np.rot90], "m, k=1, axes=(0, 1)", m="np.rot90(dy, -k, axes)", kinds=A0, linear=True)
    _r([np.roll], "a, shift, axis=None", a="np_like(np.roll(dy, np_shape_neg(shift), axis), a)", kinds=V0, ns=NS,
       linear=True)
    _r([np.rollaxis], "a, axis, start=0",
       a="np.transpose(dy, np.argsort(np_shape_rollaxis(np.ndim(a), axis, start)))", kinds=A0, ns=NS, linear=True)
    COPIES = [  # functions that only copy entries of their first argument: (functions, signature, args)
        ([np.tile], "A, reps", "(A, reps)"),
        ([np.repeat, np.ndarray.repeat], "a, repeats, axis=None", "(a, repeats, axis)"),
        ([np.resize], "a, new_shape", "(a, new_shape)"),
        ([np.take, np.ndarray.take], "a, indices, axis=None, out=None, mode='raise'", "(a, indices, axis, None, mode)"),
        ([np.take_along_axis], "a, indices, axis=-1", "(a, indices, axis)"),
        ([np.diagonal, np.ndarray.diagonal], "a, offset=0, axis1=0, axis2=1", "(a, offset, axis1, axis2)"),
        ([np.diag], "a, k=0", "(a, k)"),
        ([np.diagflat], "a, k=0", "(a, k)"),
        ([np.delete], "a, obj, axis=None", "(a, obj, axis)"),
    ]
    for fns, sig, args in COPIES:
        first = sig.split(",")[0]
        _r(fns, sig, out=ARRAY, kinds=V0, linear=True, **S,
           **{first: f"np_shape_copy_back(dy, {first}, np_shape_src(np.{fns[0].__name__}, {args}, 0))"})
    _r([np.ndarray.item], "a, *args", a="np_shape_copy_back(dy, a, np_shape_src(np.ndarray.item, (a, *args), 0))",
       kinds=A0, out=REAL, linear=True, **S)
    # selected by a condition (the second argument is the array)
    for f, sig, args in [(np.compress, "condition, a, axis=None, out=None", "(condition, a, axis)"),
                         (np.extract, "condition, a", "(condition, a)")]:
        _r([f], sig, a=f"np_shape_copy_back(dy, a, np_shape_src(np.{f.__name__}, {args}, 1))",
           kinds=("*", "A|R", ...), linear=True, **S)
    _r([np.ndarray.compress], "a, condition, axis=None, out=None",
       a="np_shape_copy_back(dy, a, np_shape_src(np.compress, (condition, a, axis), 1))", kinds=A0, linear=True, **S)
    _r([np.insert], "arr, obj, values, axis=None",
       arr="np_shape_copy_back(dy, arr, np_shape_src(np.insert, (arr, obj, values, axis), 0, zero=(2,)))",
       values="np_shape_copy_back(dy, values, np_shape_src(np.insert, (arr, obj, values, axis), 2, zero=(0,)))",
       kinds=("A|R", "*", "A|R|N", ...),
       jvp={p: f"np_t_part(np.insert, (arr, obj, values, axis), {i}, d{p}, (0, 2))" for i, p in ((0, "arr"), (2, "values"))},
       **S)
    _r([np.pad], "array, pad_width, mode='constant', *, stat_length=None, constant_values=None, end_values=None, "
       "reflect_type=None", fwd="np_shape_pad(array, pad_width, mode, stat_length=stat_length, "
       "constant_values=constant_values, end_values=end_values, reflect_type=reflect_type)",
       array="np_shape_copy_back(dy, array, np_shape_pad_src(array, pad_width, mode, reflect_type))",
       constant_values="np_shape_pad_values_back(ctx, dy, array, np_shape_pad_src(array, pad_width, mode, "
                       "reflect_type), constant_values) if mode == 'constant' else None",
       jvp={p: f"np_shape_pad_t(d{p}, array, pad_width, mode, stat_length, constant_values, end_values, reflect_type, {i})"
            for i, p in enumerate(("array", "constant_values"))},
       kinds=V0, **S)

    # ---------------------------------------------------------------------------------- dropping dims
    RESHAPES = [  # the result has the argument's entries in the same (C) order: the gradient is reshaped back
        ([np.squeeze, np.ndarray.squeeze], "a, axis=None"),
        ([np.copy, np.ndarray.copy], "a, order='K', subok=False"),
        ([np.ascontiguousarray], "a, dtype=None"),
    ]
    for fns, sig in RESHAPES:   # (a tangent cast as the value is: none for an integer dtype)
        tangent = dict(jvp=dict(a="np_t_cast(np.ascontiguousarray(da), dtype)")) if "dtype" in sig else dict(linear=True)
        _r(fns, sig, a="np_like(np_shape_reshape(dy, a), a)", kinds=V0, **tangent, **S)

    def np_shape_order(a, order):
        """The order ``ravel(a, order)`` read ``a`` in: 'C' or 'F'."""
        x = np.asarray(a)
        fortran = x.flags.f_contiguous and not x.flags.c_contiguous
        if order == "K" and x.ndim > 1 and not (x.flags.c_contiguous or x.flags.f_contiguous):
            raise GradientError("torchzygote cannot differentiate ravel/flatten(order='K') of an array that is "
                                "neither C- nor Fortran-contiguous; pass order='C' or 'F'")
        return ("F" if fortran else "C") if order in ("A", "K") else order

    def np_shape_unravel(dy, a, order):
        """The gradient of ``ravel(a, order)``: ``dy`` put back in ``a``'s shape in the order it was read."""
        if np.ndim(a) > 1 and np_shape_order(a, order) == "F":  # a C reshape to the reversed shape, transposed
            return np_like(np.transpose(np.reshape(dy, np.shape(a)[::-1])), a)
        return np_like(np_shape_reshape(dy, a), a)

    NS.update(np_shape_unravel=np_shape_unravel, np_shape_order=np_shape_order)
    _r([np.ravel, np.ndarray.ravel, np.ndarray.flatten], "a, order='C'", a="np_shape_unravel(dy, a, order)",
       kinds=V0, jvp=dict(a="np.ravel(da, order=np_shape_order(a, order))"), **S)
    reads_metadata(np_shape_unravel, 1)

    def np_shape_reshape_back(dy, a, order):
        """The gradient of ``np.reshape(a, shape, order)``: ``dy`` read back into ``a``'s shape in the same
        order ('A' resolved as NumPy does: 'F' for an array that is only Fortran-contiguous)."""
        return np_like(np.reshape(dy, np.shape(a), order=np_shape_order(a, order)), a)

    def np_shape_reshape_method(a, *shape, order="C", copy=None):
        """``a.reshape(*shape, order=..., copy=...)`` as ``np.reshape``, lifted in its place where the call has
        keywords (a rule's signature cannot take keywords after ``*shape``)."""
        return np.reshape(a, shape[0] if len(shape) == 1 else shape, order=order, copy=copy)

    NS.update(np_shape_reshape_back=np_shape_reshape_back)
    _r([np.reshape], "a, shape, order='C', *, copy=None", fwd="np.reshape(a, shape, order=order, copy=copy)",
       a="np_shape_reshape_back(dy, a, order)", ns=NS,
       jvp=dict(a="np.reshape(da, shape, order=np_shape_order(a, order), copy=copy)"))
    _r([np.ndarray.reshape], "a, *shape", a="np.reshape(dy, np.shape(a))", kinds=A0, linear=True)
    reads_metadata(np_shape_reshape_back, 1)
    # float() of a 0-d array (NumPy 2.4 refuses larger ones; older NumPy took one-entry arrays): its entry
    _r([float], "x", x="np_shape_copy_back(dy, x, np_shape_src(np.ndarray.item, (x,), 0))", kinds=A0, out=REAL,
       linear=True, **S)
    reads_metadata(np_shape_copy_back, 1)

    def np_shape_each_back(dy, xs):
        """Per-argument gradients of ``np.atleast_*d(*xs)``, which reshapes each argument (one
        argument: ``dy`` is its gradient; several: a tuple of them)."""
        if dy is None:
            return (None,) * len(xs)
        dys = (dy,) if len(xs) == 1 else dy
        return tuple([np_like(np_shape_fit(dys[i], xs[i]), xs[i]) if dys[i] is not None and
                      np_shape_is_float(xs[i]) else None for i in range(len(xs))])

    def np_shape_meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
        """``np.meshgrid`` as reshapes and broadcasts (which have rules): lifted in its place, so its
        keyword arguments (``indexing``) are seen by the code that is differentiated."""
        n = len(xi)
        axes = [1, 0] + list(range(2, n)) if indexing == "xy" and n > 1 else list(range(n))
        full = tuple([np.size(xi[axes.index(j)]) for j in range(n)])
        out = []
        for i in range(n):
            v = np.reshape(xi[i], tuple([np.size(xi[i]) if j == axes[i] else 1 for j in range(n)]))
            v = v if sparse else np.broadcast_to(v, full)
            out.append(np.copy(v) if copy else v)
        return tuple(out)

    def np_shape_broadcast_arrays(*args, subok=False):
        """``np.broadcast_arrays`` as broadcasts (which have rules), lifted in its place."""
        shape = np.broadcast_shapes(*[np.shape(a) for a in args])
        return tuple([np.broadcast_to(a, shape) for a in args])

    NS.update(np_shape_each_back=np_shape_each_back)
    for f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
        _r([f], "*arys", arys="np_shape_each_back(dy, arys)", kinds=MANY, out=MANY_OUT, linear=True, **S)
    # lifted in their place at run time, as pylib.LIFT_AS (registered by rules/__init__.py)
    LIFT_AS = {np.meshgrid: np_shape_meshgrid, np.broadcast_arrays: np_shape_broadcast_arrays,
               np.ndarray.reshape: np_shape_reshape_method}
    _r([np.matrix_transpose] if hasattr(np, "matrix_transpose") else [], "x", x="np.swapaxes(dy, -1, -2)", kinds=A0,
       linear=True)
    _r([np.ndarray.swapaxes], "a, axis1, axis2", a="np.swapaxes(dy, axis1, axis2)", kinds=A0, linear=True)
    _r([np.real_if_close], "a, tol=100", a="np_astype_back(dy, a)", kinds=V0,
       jvp=dict(a="da if np.iscomplexobj(y) else np.real(da)"))

    # ------------------------------------------------------------------------------ triangles, choices
    _r([np.triu], "m, k=0", m="np.triu(dy, k)", kinds=A0, linear=True)
    _r([np.tril], "m, k=0", m="np.tril(dy, k)", kinds=A0, linear=True)

    def np_shape_chosen(a, n, mode):
        """``np.choose``'s index array as it reads it (``wrap``/``clip`` modes applied)."""
        a = np.asarray(a)
        return a % n if mode == "wrap" else np.clip(a, 0, n - 1) if mode == "clip" else a

    def np_shape_choose_back(ctx, dy, a, choices, mode):
        """Choice ``i`` gets ``dy`` where ``a`` picked it (summed over the axes it was broadcast along)."""
        n = len(choices)
        k = np_shape_chosen(a, n, mode)
        if isinstance(choices, np.ndarray):
            if not np_shape_is_float(choices):
                return None
            sel = np.reshape(np.arange(n), (n,) + (1,) * np.ndim(dy)) == k
            return np_like(np.where(sel, dy, 0.0), choices)
        return np_shape_items_back(ctx, choices, [np.where(k == i, dy, 0.0) for i in range(n)])

    def np_shape_first_true(condlist):
        """For ``np.select``: the index of the first true condition at each entry (``len``: none)."""
        c = np.asarray(np.broadcast_arrays(*[np.asarray(x, dtype=bool) for x in condlist]))
        return np.where(np.any(c, axis=0), np.argmax(c, axis=0), len(condlist))

    def np_shape_select_back(ctx, dy, condlist, choicelist, which):
        """``np.select``: choice ``i`` gets ``dy`` where condition ``i`` is the first true one, the
        default where none is (``which``: "choices" or "default")."""
        first = np_shape_first_true(condlist)
        if which == "default":
            return np_like(np.where(first == len(condlist), dy, 0.0), choicelist) \
                if np_shape_is_float(choicelist) else None
        gs = [np.where(first == i, dy, 0.0) for i in range(len(choicelist))]
        if isinstance(choicelist, np.ndarray):
            return np_like(np.stack(gs), choicelist) if np_shape_is_float(choicelist) else None
        return np_shape_items_back(ctx, choicelist, gs)

    NS.update(np_shape_choose_back=np_shape_choose_back, np_shape_select_back=np_shape_select_back)
    _r([np.choose], "a, choices, out=None, mode='raise'", choices="np_shape_choose_back(ctx, dy, a, choices, mode)",
       kinds=S1, linear=True, **S)
    _r([np.select], "condlist, choicelist, default=0",
       choicelist="np_shape_select_back(ctx, dy, condlist, choicelist, 'choices')",
       default="np_shape_select_back(ctx, dy, condlist, default, 'default')", kinds=S1,
       jvp={p: f"np_t_part(np.select, (condlist, choicelist, default), {i}, d{p}, (1, 2))"
            for i, p in ((1, "choicelist"), (2, "default"))}, **S)
    # np.where with a condition the table has no kind for (a NumPy bool: kind O; numpy_rules' rule takes
    # the others), and np.where(condition): the indices where it holds, no gradient
    _r([np.where], "condition, a, b", a="np_like(np.where(condition, dy, 0.0), a)",
       b="np_like(np.where(condition, 0.0, dy), b)",
       kinds=[("~A|R|N|PR", "A|R|N", "A|R|N"), ("N|PR", "N", "N")],
       jvp=dict(a="np.where(condition, da, 0.0)", b="np.where(condition, 0.0, db)"), **S)
    _r([np.where], "condition", kinds=("*",), out=TUPLE)
    nondiff(np_shape_is_float, np_shape_src, np_shape_join_plan, np_shape_block_src, np_shape_neg,
            np_shape_rollaxis, np_shape_pad_src, np_shape_chosen, np_shape_first_true, np_shape_order,
            np_shape_zero_piece, np.ndim, np.size, np.broadcast_shapes,
            np.nonzero, np.flatnonzero, np.argwhere, np.indices, np.ix_, np.unravel_index,
            np.ravel_multi_index, np.diag_indices, np.diag_indices_from, np.tril_indices, np.triu_indices,
            np.tril_indices_from, np.triu_indices_from, np.mask_indices)
