def fwd(_ctx, v1, v2, v3):
    v4 = _build_dict_3('a', v2, 'b', 2.0)  # golden_programs.py:21
    v6 = (v2 * v3) + 1.0  # golden_programs.py:22
    v7 = _setitem_c_4(v4, ('b'), v6)  # golden_programs.py:22
    v8 = v7[('a')]  # golden_programs.py:23
    v9 = v7[('b')]  # golden_programs.py:23
    v11 = (v8 * v9) + v3  # golden_programs.py:23
    def back(dz):
        # grad of: z = d["a"] * d["b"] + y  (golden_programs.py:23)
        dy = dz
        dgetitem = dz * v9 if dz is not None else None
        dgetitem_1 = dz * v8 if dz is not None else None
        dd = _read_back_0(_ctx, v7, ('b'), v9, dgetitem_1) if dgetitem_1 is not None else None
        if dgetitem is not None:
            dd = _accum(dd, _read_back_0(_ctx, v7, ('a'), v8, dgetitem))
        # grad of: d["b"] = x * y + 1.0  (golden_programs.py:22)
        dadd = _write_back_1(_ctx, v4, ('b'), v6)
        dx = None
        if dadd is not None:
            _t = dadd * v3
            dx = _t if dx is None else dx + _t
            _t = dadd * v2
            dy = _t if dy is None else dy + _t
        # grad of: d = {"a": x, "b": 2.0}  (golden_programs.py:21)
        _gv0 = _dict_back_2(_ctx, v4, (('a', v2, 'b', 2.0, )))
        _t = _gv0[1]
        if _t is not None: dx = _t if dx is None else dx + _t
        return (dx, dy, )
    return v11, back
