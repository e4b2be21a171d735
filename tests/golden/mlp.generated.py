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
    def back(dsum):
        if dsum is None:
            return (None, None, None, None, None, None)
        # grad of: loss = ((y - t) ** 2).sum()  (golden_programs.py:16)
        dpow = _sum_back_0(dsum, v15, None, False)
        dsub = _pow_base_back_1(dpow, v14, 2) if dpow is not None else None
        dy = _ub(dsub, v13) if dsub is not None else None
        dt = _ub(-dsub, v7) if dsub is not None else None
        # grad of: y = torch.relu(W2 @ h + b2)  (golden_programs.py:15)
        dadd = dy * (v13 > 0) if dy is not None else None
        dmatmul = _ub(dadd, v11) if dadd is not None else None
        db2 = _ub(dadd, v5) if dadd is not None else None
        dW2 = _matmul_back_2(dmatmul, v4, v10, 0) if dmatmul is not None else None
        dh = _matmul_back_2(dmatmul, v4, v10, 1) if dmatmul is not None else None
        # grad of: h = torch.tanh(W1 @ x + b1)  (golden_programs.py:14)
        dadd_1 = _tanh_backward_3(dh, v10) if dh is not None else None
        dmatmul_1 = _ub(dadd_1, v8) if dadd_1 is not None else None
        db1 = _ub(dadd_1, v3) if dadd_1 is not None else None
        dW1 = _matmul_back_2(dmatmul_1, v2, v6, 0) if dmatmul_1 is not None else None
        dx = _matmul_back_2(dmatmul_1, v2, v6, 1) if dmatmul_1 is not None else None
        return (dW1, db1, dW2, db2, dx, dt, )
    return v16, back
