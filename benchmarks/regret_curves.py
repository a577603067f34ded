"""Regret curves on the toolkit's benchmark table: every strategy, many seeds, 95% intervals.

Each search sees one training seed's validation accuracy per query (as if it had trained the cell
once); its incumbent is judged by the table's mean test accuracy. Regret = best mean test accuracy
in the table minus the incumbent's. Prints a table of mean regret +- 95% interval per budget, the
closed-form expected regret of random search, whether a toolkit strategy beats both random search
and Optuna's TPE in mean regret at every budget from 50 on (each one, not only the printed ones),
and saves a figure (regret vs queries and vs simulated training hours).

``--objective`` changes what the searches see, to tell search quality from selection noise:
``mean_val_acc`` (the validation accuracy averaged over the table's seeds, NASLib's convention) or
``mean_test_acc`` (the judged metric itself: no noise, an oracle no real search has). Reports for
another objective than ``val_acc`` get its name as a suffix.

    python benchmarks/regret_curves.py --table nb201_mnist14 [--seeds 100] [--budget 300]

On a published NAS-Bench-201 table (``--table nb201_cifar10``) it runs three protocols instead, each search
judged by the 200-epoch ``test_acc`` of the cell that is best by its search signal (regret = the table's best
``test_acc`` minus it), mean and 95% bootstrap interval over seeds:

- ``queries``: every full-fidelity strategy searches on ``val_acc`` (one 200-epoch run) for 300 queries;
- ``cost``: equal simulated compute (summed ``train_time``); successive halving and Hyperband use the 12-epoch
  results (``val_acc_12ep``, cost ``train_time_12ep``) as the cheap fidelity and count only 200-epoch results;
  the full-fidelity strategies are read off their ``queries`` runs (a ``max_cost`` search takes the same trials);
- ``table5``: NAS-Bench-201's Table 5 protocol: 12,000 simulated seconds, every query a 12-epoch run
  (signal ``val_acc_12ep``, cost ``train_time_12ep``), the 200-epoch ``test_acc`` reported.

Every finished run is appended to ``results/regret_nb201_runs.jsonl``; a rerun resumes from it. Writes
``regret_nb201.json`` and ``regret_nb201.png``.

    python benchmarks/regret_curves.py --table nb201_cifar10 [--seeds 100] [--workers 1]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from dfl_toolkit.nas import (
    Benchmark,
    CellSpace,
    TabularEvaluator,
    search,
)
from dfl_toolkit.nas.analysis import expected_best_of_n, mean_interval
from dfl_toolkit.nas.strategies import STRATEGIES as REGISTRY

OUT = Path(__file__).parent / "results"
BUDGETS = (10, 20, 50, 100, 200, 300)
# every strategy of the registry; the settings this benchmark uses where they are not the defaults
# and, for the multi-fidelity ones, eta = 16: about 200 / 12, so each rung of a bracket costs about the same, as
# successive halving's budget split intends (eta = 3, their papers' default, keeps a third of 12-epoch results)
SETTINGS: dict[str, dict[str, Any]] = {}
STRATEGIES = {name: functools.partial(cls, **SETTINGS.get(name, {})) for name, cls in REGISTRY.items()}
STRATEGIES.update({f"{name} eta=16": functools.partial(REGISTRY[name], eta=16)
                   for name in ("successive-halving", "hyperband")})
MULTI_FIDELITY = [n for n, make in STRATEGIES.items() if getattr(make(), "multi_fidelity", False)]
_BENCH: Benchmark | None = None


def _init(table: str) -> None:
    import torch

    global _BENCH
    torch.set_num_threads(1)
    _BENCH = Benchmark.load(table)


def _run(job: tuple[str, int, int, str]) -> tuple[str, int, list[float], list[float]]:
    name, seed, budget, objective = job
    result = search(CellSpace(), STRATEGIES[name](), TabularEvaluator(_BENCH), budget, seed=seed,
                    objective=objective, progress=False)
    return name, seed, result.incumbent("mean_test_acc"), result.cumulative_cost()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=None, choices=list(STRATEGIES),
                        help="default: every strategy (on the toolkit's table, which has one fidelity, all but the "
                             "multi-fidelity ones)")
    parser.add_argument("--objective", default="val_acc", choices=("val_acc", "mean_val_acc", "mean_test_acc"),
                        help="what each search maximises (default: one training seed's validation accuracy)")
    args = parser.parse_args()
    bench = Benchmark.load(args.table)
    if not bench.seeds:  # a published table: one value per cell
        return nb201(args, bench)
    args.strategies = args.strategies or [n for n in STRATEGIES if n not in MULTI_FIDELITY]
    best = float(bench.metric("test_acc").max())
    budgets = [b for b in BUDGETS if b <= args.budget]
    jobs = [(name, seed, args.budget, args.objective) for name in args.strategies for seed in range(args.seeds)]
    curves: dict[str, list[list[float]]] = {n: [] for n in args.strategies}
    costs: dict[str, list[list[float]]] = {n: [] for n in args.strategies}
    with mp.get_context("spawn").Pool(args.workers, _init, (args.table,)) as pool:
        for name, _seed, curve, cost in pool.imap_unordered(_run, jobs):
            curves[name].append([best - v for v in curve])
            costs[name].append(cost)
    full = bench.full_space("test_acc")
    closed = {b: best - expected_best_of_n(full, b) for b in budgets}
    summary = {}
    print(f"\nregret (best mean test acc in table {best:.4f} minus incumbent's), mean +- 95% interval, "
          f"{args.seeds} seeds, searches maximise {args.objective}")
    print(f"{'strategy':<12}" + "".join(f"{b:>16}" for b in budgets))
    for name in args.strategies:
        r = np.array(curves[name])
        summary[name] = {b: mean_interval(r[:, b - 1]) for b in budgets}
        print(f"{name:<12}" + "".join(f"{m:>10.4f}+-{h:<5.4f}" for m, h in summary[name].values()))
    print(f"{'closed form*':<12}" + "".join(f"{closed[b]:>16.4f}" for b in budgets))
    print("* expected regret of random search if it picked by the mean test accuracy itself (no noise)")
    # The target is checked at every budget from 50 to --budget, not only at the printed ones.
    mean = {n: np.array(curves[n]).mean(0) for n in args.strategies}
    peers = [p for p in ("random", "optuna-tpe") if p in mean]
    checked = range(50, args.budget + 1)
    margin = {n: min(min(mean[p][b - 1] for p in peers) - mean[n][b - 1] for b in checked)
              for n in args.strategies if n not in peers} if peers and len(checked) else {}
    winners = [n for n, m in margin.items() if m > 0]
    print(f"strategies beating {' and '.join(peers)} in mean regret at every budget from 50 to {args.budget}: "
          f"{', '.join(winners) or 'none'}")
    for n, m in margin.items():
        print(f"  {n}: smallest lead over the better peer {m:+.4f}")
    OUT.mkdir(exist_ok=True)
    name = "regret_curves" + ("" if args.objective == "val_acc" else f"_{args.objective}")
    (OUT / f"{name}.json").write_text(json.dumps(
        {"table": args.table, "seeds": args.seeds, "objective": args.objective, "best": best,
         "closed_form_random": closed,
         "summary": {n: {str(b): v for b, v in s.items()} for n, s in summary.items()}, "winners": winners,
         "smallest_lead_from_50": margin, "mean_regret": {n: [round(float(v), 6) for v in m] for n, m in mean.items()}},
        indent=1))
    _plot(curves, costs, args.budget, OUT / f"{name}.png")


def _plot(curves, costs, budget, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(1, budget + 1)
    for name in curves:
        r = np.array(curves[name])
        mean, half = r.mean(0), 1.96 * r.std(0, ddof=1) / np.sqrt(len(r))
        axes[0].plot(x, mean, label=name)
        axes[0].fill_between(x, mean - half, mean + half, alpha=0.2)
        hours = np.array(costs[name]).mean(0) / 3600
        axes[1].plot(hours, mean, label=name)
    for ax, xlabel in zip(axes, ("architectures evaluated", "simulated training time (hours, 1 CPU thread)"),
                          strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("regret (test accuracy)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ---- the published NAS-Bench-201 tables -----------------------------------------------------------------------

QUERIES = 300  # queries of a full-fidelity search
COSTS = (12_000, 25_000, 50_000, 100_000, 200_000, 400_000)  # simulated seconds of the equal-compute comparison
TABLE5 = 12_000.0  # NAS-Bench-201's time budget on CIFAR-10 (Table 5)
PAPER = {"evolution": (93.92, 0.30), "reinforce": (93.85, 0.37), "random": (93.70, 0.36), "BOHB": (93.61, 0.52)}
RUNS = OUT / "regret_nb201_runs.jsonl"


class TwelveEpochs(TabularEvaluator):
    """NAS-Bench-201's Table 5 protocol: every query a 12-epoch run (signal ``val_acc_12ep``, cost
    ``train_time_12ep``); the 200-epoch ``test_acc`` is carried along for the report only."""

    def __call__(self, arch, seed: int = 0) -> dict[str, Any]:
        return {**super().__call__(arch, seed, fidelity="12ep"), "test_acc": self.bench.query(arch)["test_acc"]}


def _jobs(strategies: list[str], seeds: int) -> list[tuple[str, str, int]]:
    full = [n for n in strategies if n not in MULTI_FIDELITY]
    return ([("queries", n, s) for n in full for s in range(seeds)]
            + [("cost", n, s) for n in strategies if n in MULTI_FIDELITY for s in range(seeds)]
            + [("table5", n, s) for n in full for s in range(seeds)])


def _run_nb201(job: tuple[str, str, int]) -> dict[str, Any]:
    protocol, name, seed = job
    t0 = time.perf_counter()
    space, best = CellSpace(), float(_BENCH.full_space("test_acc").max())
    if protocol == "queries":
        result = search(space, STRATEGIES[name](), TabularEvaluator(_BENCH), QUERIES, seed=seed, progress=False)
    elif protocol == "cost":
        result = search(space, STRATEGIES[name](), TabularEvaluator(_BENCH), max_cost=float(COSTS[-1]), seed=seed,
                        progress=False)
    else:
        result = search(space, STRATEGIES[name](), TwelveEpochs(_BENCH), max_cost=TABLE5, seed=seed, progress=False)
    changes, last = [], None  # the incumbent's regret where it changes: [trial index, summed cost, regret]
    for i, (v, c) in enumerate(zip(result.incumbent("test_acc"), result.cumulative_cost(), strict=True)):
        if v != float("-inf") and round(best - v, 4) != last:
            last = round(best - v, 4)
            changes.append([i, round(c, 1), last])
    return {"protocol": protocol, "strategy": name, "seed": seed, "config": STRATEGIES[name]().config(),
            "table": _BENCH.meta["sha256"], "changes": changes, "trials": len(result.trials),
            "spent": round(result.cumulative_cost()[-1], 1),
            "cheap_trials": sum(t.fidelity is not None for t in result.trials),
            "seconds": round(time.perf_counter() - t0, 3)}


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 10_000) -> dict[str, float]:
    """Mean, 95% percentile-bootstrap interval of the mean (resampling seeds) and standard deviation."""
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "lo": float(lo), "hi": float(hi), "sd": float(values.std(ddof=1))}


def at_cost(run: dict[str, Any], level: float) -> float:
    """Regret of ``run`` once it has spent ``level`` simulated seconds: after its last trial that fits (the trials a
    ``max_cost=level`` search would take); a run that ended before spending it keeps its last value."""
    return next((r for _, c, r in reversed(run["changes"]) if c <= level), float("inf"))


def per_query(run: dict[str, Any]) -> np.ndarray:
    """Regret of ``run`` after each of its trials."""
    out = np.full(run["trials"], np.inf)
    for i, _, r in run["changes"]:
        out[i:] = r
    return out


def nb201(args: argparse.Namespace, bench: Benchmark) -> None:
    """The published-table report: three protocols, targets checked, NAS-Bench-201's Table 5 beside ours."""
    start = time.perf_counter()
    strategies = args.strategies or list(STRATEGIES)
    best = float(bench.full_space("test_acc").max())
    settings = {n: STRATEGIES[n]().config() for n in strategies}
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if RUNS.exists():  # resume: reuse the runs made with the same table and settings
        for line in RUNS.read_text().splitlines():
            run = json.loads(line)
            if run["table"] == bench.meta["sha256"] and settings.get(run["strategy"]) == run["config"]:
                done[(run["protocol"], run["strategy"], run["seed"])] = run
    todo = [j for j in _jobs(strategies, args.seeds) if j not in done]
    print(f"{len(done)} runs reused from {RUNS.name}, {len(todo)} to do with {args.workers} process(es)")
    OUT.mkdir(exist_ok=True)
    with RUNS.open("a") as log:
        if args.workers > 1:
            pool = mp.get_context("spawn").Pool(args.workers, _init, (args.table,))
            results = pool.imap_unordered(_run_nb201, todo)
        else:
            _init(args.table)
            pool, results = None, map(_run_nb201, todo)
        for i, run in enumerate(results, 1):
            done[(run["protocol"], run["strategy"], run["seed"])] = run
            log.write(json.dumps(run) + "\n")
            log.flush()
            if i % 50 == 0 or i == len(todo):
                print(f"  {i}/{len(todo)} runs, {time.perf_counter() - start:.0f} s")
        if pool is not None:
            pool.close()
    runs = {(p, n): [done[(p, n, s)] for s in range(args.seeds)] for p, n, _ in _jobs(strategies, 1)}
    rng = np.random.default_rng(0)
    full = [n for n in strategies if n not in MULTI_FIDELITY]
    report: dict[str, Any] = {"table": args.table, "best_test_acc": best, "seeds": args.seeds, "settings": settings,
                              "queries": {}, "cost": {}, "table5": {}}
    queries = {n: np.array([per_query(r) for r in runs[("queries", n)]]) for n in full}
    budgets = [b for b in BUDGETS if b <= QUERIES]
    print(f"\nregret after b queries on val_acc (one 200-epoch run), judged by test_acc (best {best:.2f}); "
          f"mean [95% bootstrap interval], {args.seeds} seeds")
    print(f"{'strategy':<28}" + "".join(f"{b:>22}" for b in budgets))
    for n in full:
        report["queries"][n] = {str(b): bootstrap(queries[n][:, b - 1], rng) for b in budgets}
        print(f"{n:<28}" + "".join(f"{v['mean']:>8.3f} [{v['lo']:.3f},{v['hi']:.3f}]"
                                   for v in report["queries"][n].values()))
    report["targets"] = _targets(queries, report["queries"])
    # equal simulated compute: full-fidelity strategies from their query runs, multi-fidelity ones from their own
    print(f"\nregret after spending c simulated seconds (12-epoch runs cost {12 / 200:.2f} of a 200-epoch one)")
    print(f"{'strategy':<28}" + "".join(f"{c:>22,}" for c in COSTS) + "   runs short of the last")
    for n in strategies:
        cost_runs = runs[("queries" if n in full else "cost", n)]
        values = {c: np.array([at_cost(r, c) for r in cost_runs]) for c in COSTS}
        short = sum(r["spent"] < COSTS[-1] for r in cost_runs) if n in full else 0
        report["cost"][n] = {str(c): bootstrap(v, rng) for c, v in values.items()}
        report["cost"][n][str(COSTS[-1])]["runs_short"] = short
        print(f"{n:<28}" + "".join(f"{v['mean']:>8.3f} [{v['lo']:.3f},{v['hi']:.3f}]"
                                   for v in report["cost"][n].values()) + f"   {short}")
    print(f"\nNAS-Bench-201's Table 5 protocol: {TABLE5:,.0f} s, 12-epoch signal and cost; test_acc mean +- sd")
    for n in full:
        acc = np.array([best - r["changes"][-1][2] for r in runs[("table5", n)]])
        queries_made = np.mean([r["trials"] for r in runs[("table5", n)]])
        report["table5"][n] = {**bootstrap(acc, rng), "queries": float(queries_made),
                               "paper": PAPER.get(n)}
        paper = f"   paper {PAPER[n][0]:.2f} +- {PAPER[n][1]:.2f}" if n in PAPER else ""
        print(f"{n:<28}{acc.mean():.2f} +- {acc.std(ddof=1):.2f} [{report['table5'][n]['lo']:.2f}, "
              f"{report['table5'][n]['hi']:.2f}] after {queries_made:.0f} queries{paper}")
    report["per_seed"] = {  # the raw numbers behind the tables: one value per seed
        "queries": {n: {str(b): [round(float(v), 4) for v in queries[n][:, b - 1]] for b in budgets} for n in full},
        "cost": {n: {str(c): [at_cost(r, c) for r in runs[("queries" if n in full else "cost", n)]] for c in COSTS}
                 for n in strategies},
        "table5_test_acc": {n: [round(best - r["changes"][-1][2], 4) for r in runs[("table5", n)]] for n in full}}
    report["seconds_per_run"] = {f"{p}/{n}": round(float(np.mean([r["seconds"] for r in rs])), 3)
                                 for (p, n), rs in runs.items()}
    report["mean_regret_per_query"] = {n: [round(float(v), 4) for v in queries[n].mean(0)] for n in full}
    report["wall_seconds_this_invocation"] = round(time.perf_counter() - start, 1)
    (OUT / "regret_nb201.json").write_text(json.dumps(report, indent=1))
    print(f"\nseconds per run: {report['seconds_per_run']}")
    _plot_nb201(queries, runs, strategies, best, OUT / "regret_nb201.png")


def _targets(queries: dict[str, np.ndarray], summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, checked and printed: evolution against random search at 200 and 300 queries (95%
    intervals apart), and the best strategy against random search at 100 and TPE at every budget from 100."""
    out: dict[str, Any] = {}
    if {"evolution", "random"} <= set(summary):
        for b in ("200", "300"):
            evo, rnd = summary["evolution"][b], summary["random"][b]
            out[f"evolution_beats_random_{b}"] = evo["hi"] < rnd["lo"]
            print(f"evolution vs random at {b}: {evo['mean']:.3f} [{evo['lo']:.3f}, {evo['hi']:.3f}] vs "
                  f"{rnd['mean']:.3f} [{rnd['lo']:.3f}, {rnd['hi']:.3f}]: intervals "
                  f"{'apart' if evo['hi'] < rnd['lo'] else 'OVERLAP'}")
    peers = {"random", "optuna-tpe"}
    if peers <= set(summary):
        mean = {n: q.mean(0) for n, q in queries.items()}
        ours = [n for n in queries if n not in peers]
        top = min(ours, key=lambda n: mean[n][99])
        ratio = float(mean[top][99] / mean["random"][99])
        lead = {n: float(min(mean["optuna-tpe"][b] - mean[n][b] for b in range(99, QUERIES))) for n in ours}
        out.update(best_at_100=top, ratio_to_random_at_100=ratio, smallest_lead_over_tpe_from_100=lead)
        print(f"best at 100 queries: {top}, mean regret {ratio:.2f}x random search's (target <= 0.5)")
        for n, m in lead.items():
            print(f"  {n}: smallest lead over TPE in mean regret, any budget 100-{QUERIES}: {m:+.4f}")
    return out


def _plot_nb201(queries, runs, strategies, best, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    x = np.arange(1, QUERIES + 1)
    for n, r in queries.items():
        mean, half = r.mean(0), 1.96 * r.std(0, ddof=1) / np.sqrt(len(r))
        axes[0].plot(x, mean, label=n)
        axes[0].fill_between(x, np.maximum(mean - half, 1e-3), mean + half, alpha=0.2)
    grid = np.geomspace(COSTS[0] / 4, COSTS[-1], 60)
    for n in strategies:
        rs = runs[("cost" if n in MULTI_FIDELITY else "queries", n)]
        axes[1].plot(grid / 3600, [np.mean([at_cost(r, c) for r in rs]) for c in grid], label=n,
                     linestyle="--" if n in MULTI_FIDELITY else "-")
    names = [n for n in queries]
    acc = [np.array([best - r["changes"][-1][2] for r in runs[("table5", n)]]) for n in names]
    axes[2].errorbar(range(len(names)), [a.mean() for a in acc], [a.std(ddof=1) for a in acc], fmt="o",
                     capsize=3, label="this table, mean +- sd")
    paper = [(i, *PAPER[n]) for i, n in enumerate(names) if n in PAPER]
    axes[2].errorbar([i + 0.2 for i, _, _ in paper], [m for _, m, _ in paper], [s for _, _, s in paper], fmt="s",
                     capsize=3, label="NAS-Bench-201 Table 5")
    axes[2].axhline(best, color="grey", linestyle=":", label=f"optimum {best:.2f}")
    axes[2].set_xticks(range(len(names)), names, rotation=30)
    axes[2].set(ylabel="test accuracy (%)", title=f"{TABLE5:,.0f} s on the 12-epoch signal")
    axes[2].legend(fontsize=8)
    for ax, xlabel in ((axes[0], "queries (200-epoch runs)"), (axes[1], "simulated training time (hours)")):
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="regret (test accuracy, %)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
