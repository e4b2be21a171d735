def fwd(_ctx, v1, v2, v3):
    v4 = _range_0(v3)  # golden_programs.py:8
    v5 = 1
    _s1 = []
    for v7 in v4:
        _s1.append(v5)
        v5 = v5 * v2  # golden_programs.py:9
    v9 = v5
    def back(dr_2):
        if dr_2 is None:
            return (None, None)
        dx = 0
        dr_next = dr_2
        for v5 in reversed(_s1):
            # grad of: r *= x  (golden_programs.py:9)
            dr = dr_next * v2
            dx = dx + dr_next * v5
            dr_next = dr
        if not _s1: dx = None
        return (dx, None, )
    return v9, back
