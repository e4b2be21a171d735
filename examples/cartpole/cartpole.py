"""Differentiable CartPole: a controller trained through the physics against model-free RL.

The talk's example: model-free RL needs hundreds of episodes to balance a pole,
but if the simulator itself is differentiable we can take the gradient of a
whole rollout's cost with respect to the controller's weights and solve it in a
handful of episodes. The simulator (``sim.py``) is gymnasium's CartPole-v1 in
plain Python + torch; torchzygote generates its gradient code. The baseline
(``reinforce.py``) learns on gymnasium's own environment. Both are judged alike:
100 test episodes with the deterministic policy, solved at a mean return >= 475.

    python -m examples.cartpole [--quick] [--seeds N] [--out DIR] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    __package__ = "examples.cartpole"

import torchzygote as tz  # noqa: E402

from . import differentiable, reinforce, sim  # noqa: E402


def progress_bar(total, desc):
    """A tqdm bar when tqdm is installed; otherwise nothing (the table says it all)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


def gymnasium_check(act, episodes=100, seed=10_000):
    """Mean return of ``act`` over ``episodes`` episodes of gymnasium's own CartPole-v1
    (None without gymnasium), and the pole angles of the first episode."""
    try:
        import gymnasium
    except ImportError:
        return None, None
    env = gymnasium.make("CartPole-v1")
    returns, angles = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            if i == 0:
                angles.append(float(obs[2]))
            with torch.no_grad():
                a = int(act(torch.as_tensor(obs, dtype=torch.float64)[None])[0])
            obs, r, term, trunc, _ = env.step(a)
            total += r
            done = term or trunc
        returns.append(total)
    return statistics.mean(returns), angles


def compare_with_autograd(policy, state0, horizon, repeat=7):
    """Max abs difference between torchzygote's and torch autograd's gradient of the
    rollout loss, the largest entry, and the best time of each over ``repeat`` runs, the two
    alternating (a machine whose speed drifts slows both alike)."""
    params = list(policy.parameters())
    loss = differentiable.loss

    def tz_grad():
        with torch.no_grad():
            gs = tz.gradient(lambda: loss(policy, state0, horizon), tz.Params(params))
        return [gs[p] for p in params]

    def torch_grad():
        return list(torch.autograd.grad(loss(policy, state0, horizon), params))

    g_tz, g_torch = tz_grad(), torch_grad()
    diff = max((a - b).abs().max().item() for a, b in zip(g_tz, g_torch))
    scale = max(b.abs().max().item() for b in g_torch)

    times = {tz_grad: [], torch_grad: []}
    for _ in range(repeat):
        for fn, ts in times.items():
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return diff, scale, min(times[tz_grad]), min(times[torch_grad])


def summary(values):
    """``median [min-max]`` of the solved runs."""
    if not values:
        return "-"
    fmt = (lambda v: f"{v:.0f}") if max(values) >= 100 else (lambda v: f"{v:.3g}")
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def main(argv=None):
    """Train both methods over the seeds, print the table, write the plot; returns the numbers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors of at most 100 x 16: extra threads only wait on each other
    try:
        return _main(argv)
    finally:
        torch.set_num_threads(threads)


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="one seed, a short baseline run (under a minute)")
    ap.add_argument("--seeds", type=int, default=5, help="training runs per method (default 5)")
    ap.add_argument("--out", default=".", help="folder for the plot (default: here)")
    ap.add_argument("--device", default="cpu", help="torch device for the controller (cpu, cuda)")
    ap.add_argument("--max-baseline-episodes", type=int, default=None,
                    help="cap on the baseline's training episodes (default 2000; 150 with --quick)")
    args = ap.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    max_baseline = args.max_baseline_episodes or (150 if args.quick else 2000)
    device = torch.device(args.device)

    _, env_name = sim.make_env()
    print(f"CartPole-v1 ({env_name}); solved = mean return >= {sim.SOLVED_RETURN:.0f} over 100 "
          f"test episodes of at most {sim.MAX_STEPS} steps, deterministic policy")
    runs = {"torchzygote (through the simulator)": [], "REINFORCE + baseline (model-free)": []}
    trainers = list(zip(runs, (differentiable.train, reinforce.train), (100, max_baseline)))
    for seed in range(seeds):
        test_starts = sim.random_starts(100, torch.Generator().manual_seed(1_000 + seed),
                                        device=device)
        for name, train, cap in trainers:
            bar = progress_bar(cap, f"seed {seed} {name.split()[0]}")
            out = train(seed, test_starts, cap, device=device, progress=bar)
            if bar is not None:
                bar.close()
            runs[name].append(out)
            model, curve, solved, steps, seconds = out
            status = f"solved in {solved} episodes" if solved else f"not solved in {cap} episodes"
            print(f"seed {seed}  {name:38s} {status:28s} {steps:7d} steps  {seconds:6.1f} s")

    print(f"\nEpisodes of experience until solved, over {seeds} seed(s): median [min-max]")
    header = (f"{'method':38s} {'solved':>7s} {'episodes':>16s} {'env steps':>19s} "
              f"{'train time (s)':>16s} {'gymnasium check':>16s}")
    print(header)
    print("-" * len(header))
    table = {}
    for name, outs in runs.items():
        ok = [o for o in outs if o[2] is not None]
        check, _ = gymnasium_check(ok[-1][0].act) if ok else (None, None)
        table[name] = {"solved": len(ok), "episodes": [o[2] for o in ok],
                       "steps": [o[3] for o in ok], "seconds": [o[4] for o in ok],
                       "gymnasium_return": check}
        print(f"{name:38s} {len(ok):>3d}/{len(outs):<3d} {summary([o[2] for o in ok]):>16s} "
              f"{summary([o[3] for o in ok]):>19s} {summary([o[4] for o in ok]):>16s} "
              f"{('-' if check is None else f'{check:.1f}'):>16s}")
    print("(gymnasium check: mean return of the last solved controller over 100 episodes of "
          "gymnasium's own CartPole-v1, fresh seeds)")

    policy = runs["torchzygote (through the simulator)"][-1][0]
    state0 = sim.random_starts(8, torch.Generator().manual_seed(7), scale=0.2, device=device)
    horizon = 50 if args.quick else 200
    diff, scale, t_tz, t_torch = compare_with_autograd(policy, state0, horizon)
    print(f"\ngradient of the rollout loss ({horizon} steps x 8 starts) vs torch autograd: "
          f"max abs diff {diff:.2e} (largest entry {scale:.2e}); one gradient takes "
          f"{t_tz * 1e3:.1f} ms with torchzygote, {t_torch * 1e3:.1f} ms with torch autograd")

    plot(runs, policy, os.path.join(args.out, "cartpole.png"))
    return {"table": table, "grad_diff": diff, "grad_scale": scale,
            "time_tz": t_tz, "time_torch": t_torch, "runs": runs}


def plot(runs, policy, path):
    """Learning curves of both methods (log x) and the pole angle over one episode."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no plot written")
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (name, outs), color in zip(runs.items(), ("C0", "C3")):
        for i, out in enumerate(outs):
            eps, ret = zip(*out[1][1:])  # from the first episode: the x axis is logarithmic
            a1.plot(eps, ret, color=color, alpha=0.7, lw=1.2, label=name if i == 0 else None)
    a1.axhline(sim.SOLVED_RETURN, color="grey", ls=":", lw=1)
    a1.set_xscale("log")
    a1.set_xlabel("episodes of experience")
    a1.set_ylabel("mean test return (100 episodes)")
    a1.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _, angles = gymnasium_check(policy.act, episodes=1)
    if angles is None:  # no gymnasium: the same episode on the simulator
        state, angles = sim.random_starts(1, torch.Generator().manual_seed(10_000)), []
        for _ in range(sim.MAX_STEPS):
            angles.append(float(state[0, 2]))
            state = sim.step(state, sim.action_force(policy.act(state)))
    a2.plot([i * sim.TAU for i in range(len(angles))], angles, color="C0", lw=1)
    for s in (-1, 1):
        a2.axhline(s * sim.THETA_LIMIT, color="grey", ls=":", lw=1)
    a2.set_ylim(-1.2 * sim.THETA_LIMIT, 1.2 * sim.THETA_LIMIT)
    a2.set_xlabel("time (s)")
    a2.set_ylabel("pole angle (rad)")
    a2.set_title("trained controller, one gymnasium episode", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
