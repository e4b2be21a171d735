def fwd(_ctx, v1, v2, v3, v4, v5, v6, v7):
    v8 = v2 @ v6  # golden_programs.py:14
    v10 = _tanh_5((v8 + v3))  # golden_programs.py:14
    v11 = v4 @ v10  # golden_programs.py:15
    v13 = _relu_6((v11 + v5))  # golden_programs.py:15
    v14 = v13 - v7  # golden_programs.py:16
    v15 = v14 ** 2  # golden_programs.py:16
    v16 = v15.sum()  # golden_programs.py:16
    def back(dsum):
        if dsum is None:
            return (None, None, None, None, None, None)
        # grad of: loss = ((y - t) ** 2).sum()  (golden_programs.py:16)
        dsub = _pow_base_back_1((_sum_back_0(dsum, v15, None, False)), v14, 2)
        dy = _ub(dsub, v13)
        dt = _ub(-dsub, v7)
        # grad of: y = torch.relu(W2 @ h + b2)  (golden_programs.py:15)
        dadd = _relu_back_2(dy, v13)
        dmatmul = _ub(dadd, v11)
        db2 = _ub(dadd, v5)
        dW2 = _matmul_back_3(dmatmul, v4, v10, 0)
        dh = _matmul_back_3(dmatmul, v4, v10, 1)
        # grad of: h = torch.tanh(W1 @ x + b1)  (golden_programs.py:14)
        dadd_1 = _tanh_backward_4(dh, v10)
        dmatmul_1 = _ub(dadd_1, v8)
        db1 = _ub(dadd_1, v3)
        dW1 = _matmul_back_3(dmatmul_1, v2, v6, 0)
        dx = _matmul_back_3(dmatmul_1, v2, v6, 1)
        return (dW1, db1, dW2, db2, dx, dt, )
    return v16, back
