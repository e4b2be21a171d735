def fwd(_ctx, v1, v2, v3, v4, v5, v6, v7):
    v8 = v2 @ v6  # golden_programs.py:14
    v9 = v8 + v3  # golden_programs.py:14
    v10 = _tanh_4(v9)  # golden_programs.py:14
    v11 = v4 @ v10  # golden_programs.py:15
    v12 = v11 + v5  # golden_programs.py:15
    v13 = _relu_5(v12)  # golden_programs.py:15
    v14 = v13 - v7  # golden_programs.py:16
    v15 = v14 ** 2  # golden_programs.py:16
    v16 = v15.sum()  # golden_programs.py:16
    def back(d16):
        if d16 is None:
            return (None, None, None, None, None, None)
        d15 = _sum_back_0(d16, v15, None, False)  # golden_programs.py:16
        d14 = None  # golden_programs.py:16
        if d15 is not None:  # golden_programs.py:16
            _t = _pow_base_back_1(d15, v14, 2)  # golden_programs.py:16
            if _t is not None: d14 = _t if d14 is None else d14 + _t  # golden_programs.py:16
        d13 = None  # golden_programs.py:16
        d7 = None  # golden_programs.py:16
        if d14 is not None:  # golden_programs.py:16
            _t = _ub(d14, v13)  # golden_programs.py:16
            d13 = _t if d13 is None else d13 + _t  # golden_programs.py:16
            _t = _ub(-d14, v7)  # golden_programs.py:16
            d7 = _t if d7 is None else d7 + _t  # golden_programs.py:16
        d12 = None  # golden_programs.py:15
        if d13 is not None:  # golden_programs.py:15
            _t = d13 * (v13 > 0)  # golden_programs.py:15
            d12 = _t if d12 is None else d12 + _t  # golden_programs.py:15
        d11 = None  # golden_programs.py:15
        d5 = None  # golden_programs.py:15
        if d12 is not None:  # golden_programs.py:15
            _t = _ub(d12, v11)  # golden_programs.py:15
            d11 = _t if d11 is None else d11 + _t  # golden_programs.py:15
            _t = _ub(d12, v5)  # golden_programs.py:15
            d5 = _t if d5 is None else d5 + _t  # golden_programs.py:15
        d4 = None  # golden_programs.py:15
        d10 = None  # golden_programs.py:15
        if d11 is not None:  # golden_programs.py:15
            _t = _matmul_back_2(d11, v4, v10, 0)  # golden_programs.py:15
            if _t is not None: d4 = _t if d4 is None else d4 + _t  # golden_programs.py:15
            _t = _matmul_back_2(d11, v4, v10, 1)  # golden_programs.py:15
            if _t is not None: d10 = _t if d10 is None else d10 + _t  # golden_programs.py:15
        d9 = None  # golden_programs.py:14
        if d10 is not None:  # golden_programs.py:14
            _t = _tanh_backward_3(d10, v10)  # golden_programs.py:14
            d9 = _t if d9 is None else d9 + _t  # golden_programs.py:14
        d8 = None  # golden_programs.py:14
        d3 = None  # golden_programs.py:14
        if d9 is not None:  # golden_programs.py:14
            _t = _ub(d9, v8)  # golden_programs.py:14
            d8 = _t if d8 is None else d8 + _t  # golden_programs.py:14
            _t = _ub(d9, v3)  # golden_programs.py:14
            d3 = _t if d3 is None else d3 + _t  # golden_programs.py:14
        d2 = None  # golden_programs.py:14
        d6 = None  # golden_programs.py:14
        if d8 is not None:  # golden_programs.py:14
            _t = _matmul_back_2(d8, v2, v6, 0)  # golden_programs.py:14
            if _t is not None: d2 = _t if d2 is None else d2 + _t  # golden_programs.py:14
            _t = _matmul_back_2(d8, v2, v6, 1)  # golden_programs.py:14
            if _t is not None: d6 = _t if d6 is None else d6 + _t  # golden_programs.py:14
        return (d2, d3, d4, d5, d6, d7, )
    return v16, back
