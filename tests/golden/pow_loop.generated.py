def fwd(_ctx, v1, v2, v3):
    _st = []
    v4 = _range_0(v3)  # golden_programs.py:8
    v5 = 1
    _n1 = 0
    for v7 in v4:
        v8 = v5 * v2  # golden_programs.py:9
        _st.append((v5,))
        _n1 += 1
        v5 = v8
    v9 = v5
    def back(d9):
        if d9 is None:
            return (None, None)
        _i = len(_st)
        d2 = None
        dn5 = d9
        for _ in range(_n1):
            _i -= 1
            v5, = _st[_i]
            d8 = dn5
            d5 = d8 * v2  # golden_programs.py:9
            _t = d8 * v5  # golden_programs.py:9
            d2 = _t if d2 is None else d2 + _t  # golden_programs.py:9
            dn5 = d5
        return (d2, None, )
    return v9, back
