"""Expressions: operators (literal arithmetic folded as CPython folds it), ``and``/``or``,
chained comparisons and ``x if c else y`` as branches, attributes of modules resolved now,
displays, f-strings, and calls, with the in-place writes a call makes followed to the names
that hold the written object."""
from __future__ import annotations

import ast
import operator
import types
from typing import Optional

import torch

from ..ir import Const, Var
from ..rules.registry import TABLE
from . import bound, ops
from .control import ControlFlow
from .scopes import inplace_name, mutated_name

BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.MatMult: operator.matmul, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
FOLDABLE = (operator.add, operator.sub, operator.mul, operator.truediv)  # literal operands fold
UNOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert, ast.Not: operator.not_}
CMPOPS = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: ops.contains, ast.NotIn: ops.not_contains,
}
UNSUPPORTED = {
    ast.Yield: "'yield' (generators)", ast.YieldFrom: "'yield from' (generators)",
    ast.Await: "'await'", ast.AsyncFor: "'async for'", ast.AsyncWith: "'async with'",
    ast.ClassDef: "a class definition inside a differentiated function",
    ast.Match: "'match' statements",
}


def _foldable_attr(value) -> bool:
    return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                              int, float, complex, str, bool, type(None), torch.dtype, torch.device,
                              torch.layout, torch.memory_format)) or callable(value)


def _method_form(fn):
    """The name of the tensor method that torch function ``fn`` (a Const) is the function form
    of, where it writes in place (``torch.relu_(y)``, ``F.relu_(y)``: ``y.relu_()``), else None."""
    f = fn.value if isinstance(fn, Const) else None
    name = getattr(f, "__name__", None)
    if type(name) is not str or not inplace_name(name) or not hasattr(torch.Tensor, name):
        return None
    return name if getattr(torch._C._VariableFunctions, name, None) is f else None


def _items_param(f):
    """The name of the parameter whose items ``f`` reads (``torch.cat``'s ``tensors``:
    ``reads_sequence`` rules), or None."""
    try:
        return TABLE.sequence_readers.get(f)
    except TypeError:   # an unhashable callee
        return None


class Expressions(ControlFlow):
    def expr(self, e):
        meth = getattr(self, "expr_" + type(e).__name__, None)
        if meth is None:
            for kind, what in UNSUPPORTED.items():
                if isinstance(e, kind):
                    self.error(what, e)
            self.error(f"the expression {type(e).__name__}", e)
        if hasattr(e, "lineno"):
            self.line = e.lineno
        return meth(e)

    def expr_Constant(self, e):
        return Const(e.value)

    def expr_Name(self, e):
        return self.load(e.id)

    def expr_NamedExpr(self, e):
        v = self.expr(e.value)
        self.assign(e.target, v)
        return v

    # ------------------------------------------------------------ operators
    def expr_BinOp(self, e):
        a, b = self.expr(e.left), self.expr(e.right)
        op = BINOPS[type(e.op)]
        if isinstance(a, Const) and isinstance(b, Const) and type(a.value) in (int, float) and \
                type(b.value) in (int, float) and op in FOLDABLE:
            try:  # ``4.0 / 3.0`` is one number, as CPython folds it
                v = op(a.value, b.value)
            except ArithmeticError:
                v = None  # the error belongs to run time, at this line
            if type(v) is float or type(v) is int and v.bit_length() < 64:
                return Const(v)
        return self.emit(op, a, b)

    def expr_UnaryOp(self, e):
        v = self.expr(e.operand)
        if isinstance(v, Const) and isinstance(v.value, (int, float, complex)) and not isinstance(e.op, ast.Not):
            return Const(UNOPS[type(e.op)](v.value))
        return self.emit(UNOPS[type(e.op)], v)

    def expr_BoolOp(self, e):
        is_and = isinstance(e.op, ast.And)

        def chain(values):
            first = self.expr(values[0])
            if len(values) == 1:
                return first
            keep = lambda: self.bind("$bool", lambda: first)
            rest = lambda: self.bind("$bool", lambda: chain(values[1:]))
            self.branch(first, rest if is_and else keep, keep if is_and else rest)
            return self.env.pop("$bool")

        return chain(e.values)

    def expr_Compare(self, e):
        left = self.expr(e.left)
        if len(e.ops) == 1:
            return self.cmp(e.ops[0], left, self.expr(e.comparators[0]))

        def chain(left, i):
            right = self.expr(e.comparators[i])
            r = self.cmp(e.ops[i], left, right)
            if i + 1 == len(e.ops):
                return r
            keep = lambda: self.bind("$bool", lambda: r)
            rest = lambda: self.bind("$bool", lambda: chain(right, i + 1))
            self.branch(r, rest, keep)
            return self.env.pop("$bool")

        return chain(left, 0)

    def cmp(self, op, a, b):
        f = CMPOPS[type(op)]
        if f in (ops.contains, ops.not_contains):
            return self.emit(f, b, a)
        return self.emit(f, a, b)

    def expr_IfExp(self, e):
        cond = self.expr(e.test)
        self.branch(cond, lambda: self.bind("$if", lambda: self.expr(e.body)),
                    lambda: self.bind("$if", lambda: self.expr(e.orelse)))
        return self.env.pop("$if")

    # ------------------------------------------------------------ attributes and items
    def expr_Attribute(self, e):
        obj = self.expr(e.value)
        if isinstance(obj, Const) and isinstance(obj.value, types.ModuleType):
            return self.module_attr(obj.value, e.attr)
        return self.emit(getattr, obj, e.attr, hint=e.attr)

    def module_attr(self, mod: types.ModuleType, name: str):
        """``mod.name`` (also ``from mod import name``) for a module found now: code and numbers are
        constants, guarded as globals are (rebinding ``mod.fn`` or ``config.dt`` re-transforms; a value
        from the module's ``__getattr__`` is guarded to stay out of its dict); data (a tensor, an array,
        a list, a name not bound yet) is read when the code runs, its gradient to the Params or the
        module's field."""
        val = getattr(mod, name, bound.ABSENT)   # (a name not bound yet may be by the time the code runs)
        d = mod.__dict__
        if val is not bound.ABSENT and _foldable_attr(val):
            self.guards[(mod, name)] = val if d.get(name, bound.ABSENT) is val else bound.ABSENT
            return Const(val)
        if val is not bound.ABSENT and d.get(name, bound.ABSENT) is val and val is not None:
            self.global_types[(mod, name)] = type(val)   # its kind, as a data global's (guarded)
        return self.emit(ops.module_data, Const(mod), name, hint=name)

    def subscript_key(self, s):
        if isinstance(s, ast.Slice):
            parts = [self.expr(p) if p is not None else Const(None) for p in (s.lower, s.upper, s.step)]
            if all(isinstance(p, Const) for p in parts):
                return Const(slice(*(p.value for p in parts)))
            return self.emit(slice, *parts)
        return self.expr(s)

    def expr_Subscript(self, e):
        obj = self.expr(e.value)
        return self.emit(operator.getitem, obj, self.subscript_key(e.slice))

    def expr_Slice(self, e):
        return self.subscript_key(e)

    # ------------------------------------------------------------ displays
    def seq_parts(self, elts, build, cat):
        if not any(isinstance(x, ast.Starred) for x in elts):
            vals = [self.expr(x) for x in elts]
            if build is ops.build_tuple and all(isinstance(v, Const) for v in vals):
                return Const(tuple(v.value for v in vals))
            return self.emit(build, *vals)
        parts, run = [], []
        for x in elts:
            if isinstance(x, ast.Starred):
                if run:
                    parts.append(self.emit(ops.build_tuple, *run))
                    run = []
                parts.append(self.expr(x.value))
            else:
                run.append(self.expr(x))
        if run:
            parts.append(self.emit(ops.build_tuple, *run))
        return self.emit(cat, *parts)

    def expr_Tuple(self, e):
        return self.seq_parts(e.elts, ops.build_tuple, ops.cat_tuple)

    def expr_List(self, e):
        return self.seq_parts(e.elts, ops.build_list, ops.cat_list)

    def expr_Set(self, e):
        return self.emit(ops.build_set, *[self.expr(x) for x in e.elts])

    def expr_Dict(self, e):
        if any(k is None for k in e.keys):
            parts = []
            for k, v in zip(e.keys, e.values):
                parts.append(self.expr(v) if k is None else self.emit(ops.build_dict, self.expr(k), self.expr(v)))
            return self.emit(ops.merge_dict, *parts)
        args = []
        for k, v in zip(e.keys, e.values):
            args += [self.expr(k), self.expr(v)]
        return self.emit(ops.build_dict, *args)

    def expr_JoinedStr(self, e):
        parts = []
        for v in e.values:
            if isinstance(v, ast.FormattedValue):
                spec = self.expr(v.format_spec) if v.format_spec is not None else Const("")
                parts.append(self.emit(ops.format_value, self.expr(v.value), v.conversion, spec))
            else:
                parts.append(self.expr(v))
        return self.emit(ops.join_str, *parts)

    # ------------------------------------------------------------ calls
    def expr_Call(self, e):
        if isinstance(e.func, ast.Name) and e.func.id == "super" and not e.args and "__class__" in self.code.co_freevars:
            params = self.node.args.posonlyargs + self.node.args.args   # (``def __init__(self, it=None, /)``)
            first = self.env[params[0].arg] if params else None
            return self.emit(super, self.load("__class__"), first)
        is_method = isinstance(e.func, ast.Attribute)
        item_of = None  # (base, key) for an in-place method on an item: ``y[k].mul_(3)``
        if is_method and inplace_name(e.func.attr) and isinstance(e.func.value, ast.Subscript) and \
                self._local(e.func.value.value):
            base, key = self.expr(e.func.value.value), self.subscript_key(e.func.value.slice)
            obj, item_of = self.emit(operator.getitem, base, key), (base, key)
        elif is_method:
            obj = self.expr(e.func.value)
            if isinstance(obj, Const) and isinstance(obj.value, types.ModuleType):
                fn, is_method = self.expr_Attribute(e.func), False
        else:
            fn = self.expr(e.func)
            if isinstance(fn, Const) and fn.value is globals and not e.args and not e.keywords:
                return self.emit(ops.globals_of, self.self_var)
        if not is_method and e.args and not isinstance(e.args[0], ast.Starred):
            name = _method_form(fn)
            if name is not None:   # torch.relu_(y) is y.relu_(): the method's rules, guards and renewal
                attr = ast.copy_location(ast.Attribute(value=e.args[0], attr=name, ctx=ast.Load()), e.func)
                return self.expr_Call(ast.copy_location(ast.Call(func=attr, args=e.args[1:], keywords=e.keywords), e))
        args, kwargs, star, dstar = self._call_args(e)
        self.line = e.lineno
        if is_method:
            return self._method_call(e, obj, item_of, args, kwargs, star, dstar)
        if star is None:
            self._mark_untracked(e, None, args, kwargs)
            self._items_now(e, fn, args, kwargs)
            if isinstance(fn, Const) and fn.value is setattr and len(args) == 3 and not kwargs:
                self.set_attr(*args)   # (``setattr(cfg, "act", f)``: a module attribute's write is checked)
                return Const(None)
            if isinstance(fn, Const) and fn.value is getattr and len(args) == 2 and not kwargs and \
                    isinstance(args[0], Const) and isinstance(args[0].value, types.ModuleType) and \
                    isinstance(args[1], Const) and type(args[1].value) is str:
                return self.module_attr(args[0].value, args[1].value)   # ``getattr(cfg, "W")`` is ``cfg.W``
        out = self.emit(fn, *args, kwargs=kwargs, star=star, dstar=dstar)
        self._renew_mutated(e, None, args, star, out)
        return out

    def _items_now(self, e: ast.Call, fn, args, kwargs) -> None:
        """A function that reads a list's items (``torch.cat(xs)``) gets them as they are at the
        call (``ops.items_of``): its pullback reads them again, after later writes into the list."""
        name = _items_param(fn.value) if isinstance(fn, Const) else None
        if name is None:
            return
        if args and not isinstance(e.args[0], (ast.List, ast.Tuple)):   # (displays: ir.literal_tuples)
            args[0] = self.emit(ops.items_of, args[0])
        elif not args:
            for k, (key, v) in enumerate(kwargs):
                if key == name:
                    kwargs[k] = (key, self.emit(ops.items_of, v))

    def _call_args(self, e: ast.Call):
        """A call's positional and keyword arguments, its ``*`` tuple and ``**`` dict."""
        args = [self.genexp_arg(a) for a in e.args if not isinstance(a, ast.Starred)]
        star = None
        if any(isinstance(a, ast.Starred) for a in e.args):
            star = self.seq_parts(e.args, ops.build_tuple, ops.cat_tuple)
            args = []
        kwargs, dstar = [], None
        if any(k.arg is None for k in e.keywords):
            parts = []
            for k in e.keywords:
                parts.append(self.expr(k.value) if k.arg is None else
                             self.emit(ops.build_dict, Const(k.arg), self.expr(k.value)))
            dstar = self.emit(ops.merge_dict, *parts)
        else:
            kwargs = [(k.arg, self.expr(k.value)) for k in e.keywords]
        return args, kwargs, star, dstar

    def _method_call(self, e: ast.Call, obj, item_of, args, kwargs, star, dstar):
        """``obj.name(...)``; after an in-place method, the names holding ``obj`` (or the base
        whose item it is) take the written object as a new value."""
        head = (obj, Const(e.func.attr))
        if star is not None:  # the star tuple holds every positional argument: the object and name too
            star, head = self.emit(ops.cat_tuple, self.emit(ops.build_tuple, *head), star), ()
        if item_of is None and star is None:
            self._mark_untracked(e, obj, args, kwargs)
        out = self.emit(ops.call_method, *head, *args, kwargs=kwargs, star=star, dstar=dstar,
                        hint=e.func.attr)
        if item_of is not None:  # the item is a view: write it back, so the base gets a new value
            self.renew(e.func.value.value.id, item_of[0],
                       self.emit(ops.setitem_v, item_of[0], item_of[1], out), (*args, *(v for _, v in kwargs)))
        elif inplace_name(e.func.attr) and self._local(e.func.value):
            # torch's in-place methods return the mutated tensor
            self.renew(e.func.value.id, obj, out, (*args, *(v for _, v in kwargs)))
        elif inplace_name(e.func.attr) and self._bound_name(obj) is not None:
            # a chain (``m.mul_(0.9).add_(x)``): the first call's result is ``m``'s tensor, so the
            # names holding it take this write too
            self.renew(self._bound_name(obj), obj, out, (*args, *(v for _, v in kwargs)))
        else:
            self._renew_mutated(e, obj, args, star, out)
        return out

    def _bound_name(self, v) -> Optional[str]:
        """A local name that holds value ``v`` now, if one does."""
        if isinstance(v, Var):
            for name, val in self.env.items():
                if val == v and not name.startswith("$"):
                    return name
        return None

    def _mark_untracked(self, e, obj, args, kwargs):
        """An in-place write into an object that no local name holds (``G.mul_(x)`` on a global,
        ``np.copyto(self.buf, y)``): its new contents cannot be followed, so codegen refuses it
        where the written values carry gradients (``ops.untracked_write``)."""
        f = e.func
        if not isinstance(f, ast.Attribute):
            return
        if obj is not None and (inplace_name(f.attr) or f.attr in ops.MUTATING_METHODS):
            node, target = f.value, obj
        elif f.attr in ops.MUTATING_FUNCTIONS and args:
            node, target = e.args[0], args[0]
        else:
            return
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and not self._local(node):
            self.emit(ops.untracked_write, target, *args, *(v for _, v in kwargs), out=False)

    def _renew_mutated(self, e, obj, args, star, out):
        """After ``x.fill(c)``, ``np.copyto(x, y)``, ``np.add.at(x, i, v)``: ``x`` (a local name)
        takes the written object as a new value."""
        name = mutated_name(e)
        if name is None and obj is None and star is None and args and isinstance(e.args[0], ast.Name) and \
                inplace_name(e.func.attr if isinstance(e.func, ast.Attribute) else getattr(e.func, "id", "")) \
                and self._local(e.args[0]):
            same = self.emit(operator.is_, out, args[0])   # torch.relu_(y)
            self.renew(e.args[0].id, args[0], self.emit(ops.returned, args[0], out, same), args[1:])
            return
        if name is None or star is not None or not self._local(name):
            return
        old = obj if name is e.func.value else args[0]
        self.renew(name.id, old, self.emit(ops.mutated, old, out), args)
