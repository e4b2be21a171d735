def fwd(_ctx, v1, v2, v3):
    v4 = _build_dict_3('a', v2, 'b', 2.0)  # golden_programs.py:21
    v5 = v2 * v3  # golden_programs.py:22
    v6 = v5 + 1.0  # golden_programs.py:22
    v7 = _setitem_t_4(v4, ('b'), v6)  # golden_programs.py:22
    v8 = v7[('a')]  # golden_programs.py:23
    v9 = v7[('b')]  # golden_programs.py:23
    v10, B6 = _J(_ctx, _mul_5, v8, v9)  # golden_programs.py:23
    v11, B7 = _J(_ctx, _add_6, v10, v3)  # golden_programs.py:23
    def back(d11):
        _g = B7(d11)  # golden_programs.py:23
        d10 = None  # golden_programs.py:23
        d3 = None  # golden_programs.py:23
        d10 = _accum(d10, _g[0])  # golden_programs.py:23
        _t = _g[1]  # golden_programs.py:23
        if _t is not None: d3 = _t if d3 is None else d3 + _t  # golden_programs.py:23
        _g = B6(d10)  # golden_programs.py:23
        d8 = None  # golden_programs.py:23
        d9 = None  # golden_programs.py:23
        d8 = _accum(d8, _g[0])  # golden_programs.py:23
        d9 = _accum(d9, _g[1])  # golden_programs.py:23
        d7 = None  # golden_programs.py:23
        if d9 is not None:  # golden_programs.py:23
            d7 = _accum(d7, _read_back_0(_ctx, v7, ('b'), v9, d9))  # golden_programs.py:23
        if d8 is not None:  # golden_programs.py:23
            d7 = _accum(d7, _read_back_0(_ctx, v7, ('a'), v8, d8))  # golden_programs.py:23
        d6 = _write_back_1(_ctx, v4, ('b'), v6)  # golden_programs.py:22
        d5 = None  # golden_programs.py:22
        if d6 is not None:  # golden_programs.py:22
            _t = d6  # golden_programs.py:22
            d5 = _t if d5 is None else d5 + _t  # golden_programs.py:22
        d2 = None  # golden_programs.py:22
        if d5 is not None:  # golden_programs.py:22
            _t = d5 * v3  # golden_programs.py:22
            d2 = _t if d2 is None else d2 + _t  # golden_programs.py:22
            _t = d5 * v2  # golden_programs.py:22
            d3 = _t if d3 is None else d3 + _t  # golden_programs.py:22
        _gv0 = _dict_back_2(_ctx, v4, (('a', v2, 'b', 2.0, )))  # golden_programs.py:21
        _t = _gv0[1]  # golden_programs.py:21
        if _t is not None: d2 = _t if d2 is None else d2 + _t  # golden_programs.py:21
        return (d2, d3, )
    return v11, back
