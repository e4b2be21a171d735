"""What the fuzzer's generators of shaped values share: fresh names, variables of a shape, a
condition on a scalar, blocks, ``if`` and ``while``. ``of_shape``, ``stmt`` and ``child`` are each
generator's own."""


class ShapedGen:
    def __init__(self, rng):
        self.rng = rng
        self.n = 0
        self.features = set()

    def fresh(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def var(self, sc, shape):
        vs = sorted(k for k, s in sc["vars"].items() if s == shape)
        return self.rng.choice(vs) if vs else None

    def var_or(self, sc, shape, d):
        v = self.var(sc, shape)
        return v if v is not None else f"({self.of_shape(sc, shape, d - 1)})"

    def cond(self, sc):
        a = self.of_shape(sc, (), 1)
        return f"{a} {self.rng.choice(['>', '<'])} {self.rng.choice(['0.0', '0.5', '-0.2'])}"

    def block(self, sc, ind, n, depth, in_loop):
        out = []
        for _ in range(n):
            out += self.stmt(sc, ind, depth, in_loop)
        return out or [ind + "pass"]

    def if_stmt(self, sc, ind, depth, in_loop):
        r = self.rng
        self.features.add("if")
        out = [f"{ind}if {self.cond(sc)}:"]
        out += self.block(self.child(sc), ind + "    ", r.randint(1, 2), depth - 1, in_loop)
        if r.random() < 0.6:
            out.append(f"{ind}else:")
            out += self.block(self.child(sc), ind + "    ", r.randint(1, 2), depth - 1, in_loop)
        return out

    def while_stmt(self, sc, ind, depth):
        r = self.rng
        self.features.add("while")
        k = self.fresh("k")
        out = [f"{ind}{k} = 0", f"{ind}while {k} < {r.randint(1, 4)} and {self.cond(sc)}:", f"{ind}    {k} += 1"]
        out += self.block(self.child(sc), ind + "    ", r.randint(1, 3), depth - 1, True)
        return out
