"""Command line: ``python -m dfl_toolkit ...`` (also installed as ``dfl``).

    dfl doctor                      check versions, device and offline datasets
    dfl search ...                  run a search (space, strategy, evaluator, budget, seed, checkpoint)
    dfl benchmark build ...         train every unique NAS-Bench-201 cell (resumable)
    dfl benchmark pack DIR DEST     write the shipped table from a build folder
    dfl benchmark query TABLE ARCH  look one cell up
    dfl assignments release         write student copies of the assignment notebooks
    dfl assignments grade DIR       grade submitted notebooks, write grades.csv and feedback
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DFLError, UnknownNameError, UsageError


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import environment_report, format_report

    rows = environment_report(load_datasets=not args.no_data)
    print(format_report(rows))
    return 1 if any("FAILED" in f or "MISSING" in f for _, f in rows) else 0


def _budget(args: argparse.Namespace, space: str = "nb201_cell"):
    """The TrainBudget the training options describe: ``TrainBudget.for_dataset`` (the dataset's own defaults:
    the shipped table's budget for MNIST-5k) with the options given changed. The macro space builds with its own
    defaults: the cell skeleton's options do not apply to it."""
    from .nas.evaluators import TrainBudget

    base = TrainBudget.for_dataset(args.dataset or TrainBudget().dataset)
    options = {**base.data_options, **{k: v for k, v in (("train_size", args.train_size),
                                                         ("image_size", args.image_size)) if v is not None}}
    if args.unused_to_val:
        options["unused_to_val"] = True
    cell_options = {k: v for k, v in (("channels", args.channels), ("cells_per_stage", args.cells_per_stage))
                    if v is not None}
    if space != "nb201_cell" and cell_options:
        raise UsageError(f"--channels and --cells-per-stage set the cell space's skeleton; the {space} space "
                         f"does not take them")
    skeleton = {**base.skeleton, **cell_options} if space == "nb201_cell" else {}
    chosen = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr") if getattr(args, k) is not None}
    return TrainBudget.for_dataset(base.dataset, data_options=options, skeleton=skeleton, **chosen)


BUDGET_OPTIONS = ("dataset", "train_size", "image_size", "unused_to_val", "epochs", "batch_size", "lr", "channels",
                  "cells_per_stage")  # the dests of _add_budget_options


def _add_budget_options(parser: argparse.ArgumentParser) -> None:
    """Training options; each defaults to None, meaning TrainBudget's value (MNIST-5k at 14x14, the benchmark's
    budget), which the help states."""
    from .nas.evaluators import TrainBudget

    d = TrainBudget()
    sizes = d.data_options
    parser.add_argument("--dataset", help=f"dataset to train on (default: {d.dataset})")
    parser.add_argument("--train-size", type=int,
                        help=f"train images used (default: {sizes.get('train_size', 'all')} for {d.dataset}, "
                             f"all for another dataset)")
    parser.add_argument("--image-size", type=int,
                        help=f"resize images to this side (default: {sizes.get('image_size', 'native')} for "
                             f"{d.dataset}, the native size for another dataset)")
    parser.add_argument("--unused-to-val", action="store_true", default=None,
                        help="add the train images --train-size leaves out to the validation split")
    parser.add_argument("--epochs", type=int, help=f"training epochs (default: {d.epochs})")
    parser.add_argument("--batch-size", type=int, help=f"training batch size (default: {d.batch_size})")
    parser.add_argument("--lr", type=float,
                        help=f"learning rate of {d.optimizer} with a cosine schedule (default: {d.lr})")
    parser.add_argument("--channels", type=int,
                        help=f"cell space: channels of the first stage (default: {d.skeleton['channels']})")
    parser.add_argument("--cells-per-stage", type=int,
                        help=f"cell space: cells in each stage (default: {d.skeleton['cells_per_stage']})")


def _given(args: argparse.Namespace, dests: tuple[str, ...]) -> list[str]:
    """The options among ``dests`` (left out: None) that the command line gave, as flags."""
    return ["--" + d.replace("_", "-") for d in dests if getattr(args, d) is not None]


def _check_at_least(option: str, value: int | None, what: str, least: int = 1) -> None:
    if value is not None and value < least:
        raise UsageError(f"{option} is {what}: at least {least}, got {value}")


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Adds each option's default to its help, except None or "" (the help says what leaving it out means)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default in (None, "") else super()._get_help_string(action)


def _executor(args: argparse.Namespace):
    """The executor the options name: None (this process) for one local worker, else a process pool or Ray."""
    from .nas import ProcessExecutor, RayExecutor

    _check_at_least("--workers", args.workers, "the number of evaluations run at once")
    ray_only = [flag for flag, value in (("--address", args.address), ("--cpus-per-task", args.cpus_per_task),
                                         ("--gpus-per-task", args.gpus_per_task)) if value is not None]
    if args.executor != "ray":
        if ray_only:
            raise UsageError(f"{', '.join(ray_only)} {'go' if ray_only[1:] else 'goes'} with --executor ray; "
                             f"this run uses --executor {args.executor}")
        return ProcessExecutor(args.workers) if args.workers > 1 else None
    for flag, value in (("--cpus-per-task", args.cpus_per_task), ("--gpus-per-task", args.gpus_per_task)):
        if value is not None and value < 0:
            raise UsageError(f"{flag} is what each Ray task asks for: a number >= 0, got {value}")
    return RayExecutor(args.address, workers=args.workers, cpus=1.0 if args.cpus_per_task is None else
                       args.cpus_per_task, gpus=args.gpus_per_task or 0.0)


def _add_executor_options(parser: argparse.ArgumentParser, workers_help: str) -> None:
    parser.add_argument("--workers", type=int, default=1, help=workers_help)
    parser.add_argument("--executor", choices=("process", "ray"), default="process",
                        help="process: worker processes on this machine; ray: Ray tasks, on a local Ray instance "
                             "with --workers CPUs, or on the cluster at --address (pip install "
                             "'dfl_toolkit[distributed]'; see docs/distributed.md)")
    parser.add_argument("--address", default=None,
                        help="with --executor ray: 'auto' (the cluster this machine joined with `ray start`) or "
                             "HOST:PORT of its head (default: start a local Ray instance, shut down at the end)")
    parser.add_argument("--cpus-per-task", type=float, default=None,
                        help="with --executor ray: CPUs each evaluation asks for (default: 1)")
    parser.add_argument("--gpus-per-task", type=float, default=None,
                        help="with --executor ray: GPUs each evaluation asks for, e.g. 0.5 (default: 0)")


def _bench_build(args: argparse.Namespace) -> int:
    from .nas.benchmark.build import build

    executor = _executor(args)
    try:
        n = sum(1 for _ in build(args.out, _budget(args), args.seeds, workers=args.workers, limit=args.limit,
                                 executor=executor))
    finally:
        if executor is not None:
            executor.close()
    print(f"{n} evaluations added to {args.out}")
    return 0


def _bench_pack(args: argparse.Namespace) -> int:
    from .nas.benchmark.build import pack
    from .nas.benchmark.table import Benchmark

    dest = pack(args.build_dir, args.dest, note=args.note)
    bench = Benchmark.load(dest)
    meta = bench.meta
    print(f"wrote {dest}: {meta['cells']} of {meta['unique_cells']} cells, seeds {meta['seeds']} "
          f"(every cell has {bench.seeds}), complete={meta['complete']}")
    return 0


def _bench_query(args: argparse.Namespace) -> int:
    from .nas.benchmark.table import Benchmark

    print(json.dumps(Benchmark.load(args.table).query(args.arch, seed=args.seed), indent=1))
    return 0


def _search(args: argparse.Namespace) -> int:
    from .nas import Benchmark, search
    from .nas.evaluators import EVALUATORS
    from .nas.objectives import MnasReward
    from .nas.spaces import SPACES
    from .nas.strategies import STRATEGIES

    strategy, space = STRATEGIES[args.strategy](), SPACES[args.space]()
    kind = args.evaluator or ("table" if args.table else "train")
    _check_at_least("--top", args.top, "the number of rows of the results table")
    ignored = _given(args, BUDGET_OPTIONS if kind == "table" else ("epochs", "batch_size", "lr") if kind == "proxy"
                     else ())
    if ignored:
        why = "the benchmark table was trained with its own budget" if kind == "table" else \
            "proxies score untrained networks"
        raise UsageError(f"{why}, so {', '.join(ignored)} would be ignored; leave {'them' if ignored[1:] else 'it'} "
                         f"out, or train with --evaluator train")
    if args.proxy and kind != "proxy":
        raise UsageError(f"--proxy names the proxy of --evaluator proxy; this search uses --evaluator {kind}")
    if args.reward_target is not None and not args.reward_cost:
        raise UsageError("--reward-target goes with --reward-cost (params, flops or latency)")
    if kind == "table":
        bench = Benchmark.load(args.table)  # no --table: the shipped table
        if space.name != bench.meta["space"]:
            raise UsageError(f"the benchmark table holds the {bench.meta['space']} space only; search the "
                             f"{space.name} space with --evaluator train or --evaluator proxy")
        if len(bench) < bench.meta["unique_cells"]:  # a missing seed is fine: means use the complete ones
            raise UsageError(f"the table {args.table} holds only {len(bench)} of {bench.meta['unique_cells']} cells, "
                             f"so the search would fail on the rest; pack a complete build, or leave --table out "
                             f"to use the shipped table")
        evaluator = EVALUATORS[kind](bench)
    elif args.table:
        raise UsageError(f"--table is the table to look architectures up in; it goes with --evaluator table, "
                         f"not --evaluator {kind}")
    elif kind == "train":
        evaluator = EVALUATORS[kind](space, _budget(args, space.name))
    else:
        evaluator = EVALUATORS[kind](space, args.proxy or "naswot", _budget(args, space.name))
    objective = args.objective or evaluator.metrics[0]  # val_acc, or the proxy
    if objective not in evaluator.metrics:
        raise UnknownNameError(f"--objective for --evaluator {kind}:", objective, evaluator.metrics)
    if args.reward_cost:
        if args.reward_target is None:
            raise UsageError("--reward-cost needs --reward-target (the cost MnasNet's reward aims at, e.g. 30000 "
                             "parameters)")
        if kind == "proxy":
            raise UsageError("MnasNet's reward scales an accuracy by the cost; a proxy is not an accuracy, so use "
                             "--evaluator train or table with --reward-cost")
        evaluator = MnasReward(evaluator, args.reward_cost, args.reward_target, accuracy_key=objective)
        objective = "reward"
    executor = _executor(args)
    try:
        budget = 100 if args.budget is None and args.max_cost is None else args.budget
        result = search(space, strategy, evaluator, budget, max_cost=args.max_cost, seed=args.seed,
                        checkpoint=args.checkpoint, objective=objective, batch_size=args.workers, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    _print_trials(result, args.top)
    return 1 if all(t.failed for t in result.trials) else 0


def _print_trials(result, top: int) -> None:
    """The best ``top`` distinct architectures (isomorphic copies count as one): objective, accuracy and proxy
    scores where measured, parameters, how often the search evaluated it, cost, architecture."""
    from .nas.proxies import PROXIES

    space, best = result.space, {}
    for t in sorted(result.trials, key=lambda t: (-result.score(t), t.number)):
        key = space.canonical(space.from_str(t.arch))
        best.setdefault(key, [t, 0])[1] += 1
    rows = list(best.values())[:top]
    shown = dict.fromkeys(("val_acc", "test_acc", "mean_test_acc", *PROXIES, "params"))  # what evaluators measure
    columns = [result.objective] + [k for k in shown if k != result.objective and any(k in t.result for t, _ in rows)]
    widths = [max(10, len(c)) for c in columns]

    def cell(v: object, w: int) -> str:
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:>{w},}"
        return f"{v:>{w}.4g}" if isinstance(v, float) else f"{'-':>{w}}"

    print(f"\n{'#':>4}  " + "  ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
          + f"  {'evals':>5}  {'cost s':>7}  architecture")
    for t, n in rows:
        print(f"{t.number:>4}  " + "  ".join(cell(t.result.get(c), w) for c, w in zip(columns, widths, strict=True))
              + f"  {n:>5}  {t.cost:>7.2f}  {t.arch}")
    failed = sum(t.failed for t in result.trials)
    print(f"{len(result.trials)} evaluations of {len(best)} distinct architectures, {failed} failed, "
          f"total cost {result.cumulative_cost()[-1]:.1f} s")
    if failed:
        print(f"first failure: {next(t.result.get('error', 'diverged') for t in result.trials if t.failed)}")


def _assign_release(args: argparse.Namespace) -> int:
    from .classroom import release

    for path in release(args.source, args.release):
        print(f"wrote {path}")
    return 0


def _assign_grade(args: argparse.Namespace) -> int:
    from .classroom import grade

    out = Path(args.out)
    try:
        grades = grade(args.submissions, args.source, out, timeout=args.timeout, jobs=args.jobs,
                       memory_gb=args.memory, sandbox=args.sandbox, fresh=args.fresh)
    except KeyboardInterrupt:
        print(f"interrupted; every finished notebook is in {out / 'grades.csv'}: rerun the same command to resume",
              file=sys.stderr)
        return 130
    print(f"{len(grades)} notebooks graded: {out / 'grades.csv'}, feedback in {out / 'feedback'}, "
          f"summary in {out / 'summary.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfl", description="dfl_toolkit: deep feature learning and NAS.")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check versions, device and offline datasets")
    doctor.add_argument("--no-data", action="store_true", help="skip loading the offline datasets")
    doctor.set_defaults(run=_doctor)

    from .nas.benchmark.table import PUBLISHED, shipped_tables
    from .nas.evaluators import EVALUATORS
    from .nas.spaces import SPACES
    from .nas.strategies import STRATEGIES

    tables = ", ".join(shipped_tables())  # the toolkit's, then published NAS-Bench-201 results
    srch = sub.add_parser("search", help="search a space (cell or macro) by training, table lookup or proxies",
                          formatter_class=_DefaultsShown)
    srch.add_argument("--space", choices=list(SPACES), default="nb201_cell",
                      help="nb201_cell: NAS-Bench-201 cells; macro_mbconv: MBConv stages (depth, width, kernel, "
                           "expansion)")
    srch.add_argument("--strategy", choices=list(STRATEGIES), default="evolution",
                      help="how the next architectures to evaluate are chosen")
    srch.add_argument("--evaluator", choices=list(EVALUATORS), default=None,
                      help="train: from scratch (the default without --table); table: look up in the benchmark "
                           "table, cell space only (the default with --table); proxy: zero-cost proxies at "
                           "initialisation")
    srch.add_argument("--budget", type=int, default=None,
                      help="number of evaluations (default: 100); with --max-cost, no limit unless given")
    srch.add_argument("--max-cost", type=float, default=None,
                      help="stop before the summed cost passes this (simulated seconds of training with --table, "
                           "e.g. 12000; default: no limit)")
    srch.add_argument("--seed", type=int, default=0, help="seed of the strategy and of the training runs")
    srch.add_argument("--checkpoint", default=None,
                      help="JSON file saved after each evaluation; rerun the same command to resume (default: none)")
    srch.add_argument("--objective", default=None,
                      help=f"metric to maximise (default: val_acc; with --evaluator proxy, the proxy). train: "
                           f"{', '.join(EVALUATORS['train'].metrics)}; table: "
                           f"{', '.join(EVALUATORS['table'].metrics)} (a published table such as {PUBLISHED[0]}: "
                           f"its columns, which `benchmark query` prints); proxy: the proxy or params")
    srch.add_argument("--table", default=None,
                      help=f"benchmark table for --evaluator table (implies it): a .json.gz file or a shipped name "
                           f"({tables}); it must hold every cell (default: nb201_mnist14, which does)")
    srch.add_argument("--proxy", default=None, help="with --evaluator proxy: naswot (default), synflow, snip, "
                                                     "grad_norm or params")
    srch.add_argument("--reward-cost", choices=("params", "flops", "latency"), default=None,
                      help="search MnasNet's reward: the objective times (cost / target) ** -0.07 (default: the "
                           "objective alone)")
    srch.add_argument("--reward-target", type=float, default=None, help="the cost --reward-cost aims at")
    _add_executor_options(srch, "evaluate this many at once (the search asks for that many architectures at a "
                                "time, so resume a checkpoint with the same --workers, whatever the executor)")
    _add_budget_options(srch)  # training; for proxies, the data and skeleton (the proxy batch is 64 images)
    srch.add_argument("--top", type=int, default=5, help="rows of the results table (distinct architectures)")
    srch.set_defaults(run=_search)

    bench = sub.add_parser("benchmark", help="build, pack or query a NAS benchmark table (the toolkit's, or the "
                                            "published NAS-Bench-201 results)")
    bsub = bench.add_subparsers(dest="action", required=True)
    b = bsub.add_parser("build", help="train every unique NAS-Bench-201 cell; resumes where it stopped",
                        formatter_class=_DefaultsShown)
    b.add_argument("--out", required=True, help="build folder (config.json + results.jsonl)")
    _add_budget_options(b)
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                   help="training seeds of each cell: non-negative, each given once (a repeated seed is refused)")
    _add_executor_options(b, "evaluations run at once, one CPU thread each")
    b.add_argument("--limit", type=int, default=None,
                   help="only the first N cells of the fixed order (default: all 6,466)")
    b.set_defaults(run=_bench_build)
    p = bsub.add_parser("pack", help="write the shipped table (.json.gz) from a build folder",
                        formatter_class=_DefaultsShown)
    p.add_argument("build_dir", help="build folder written by `dfl benchmark build`")
    p.add_argument("dest", help="table file to write (.json.gz)")
    p.add_argument("--note", default="", help="free text stored in the table's metadata (default: none)")
    p.set_defaults(run=_bench_pack)
    q = bsub.add_parser("query", help="metrics of one cell, e.g. '|nor_conv_3x3~0|+|...|+|...|'",
                        formatter_class=_DefaultsShown)
    q.add_argument("table", help=f"a .json.gz file, or a shipped table's name: {tables}")
    q.add_argument("arch", help="the cell's string form, as `dfl search` prints it: "
                                "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
    q.add_argument("--seed", type=int, default=None,
                   help="one training seed's metrics (default: the mean over the table's seeds; published tables "
                        "have one value per cell, so no seed)")
    q.set_defaults(run=_bench_query)

    assign = sub.add_parser("assignments", help="release student copies of assignments, grade submissions")
    asub = assign.add_subparsers(dest="action", required=True)
    r = asub.add_parser("release", help="source/*.ipynb -> student copies (solutions stubbed, hidden checks out)")
    r.add_argument("--source", default="notebooks/assignments/source")
    r.add_argument("--release", default="notebooks/assignments/release")
    r.set_defaults(run=_assign_release)
    g = asub.add_parser("grade", help="run SUBMISSIONS/<student>/<assignment>.ipynb with all checks, write a CSV")
    g.add_argument("submissions", help="folder with one folder per student: SUBMISSIONS/<student>/<assignment>.ipynb")
    g.add_argument("--source", default="notebooks/assignments/source", help="the source notebooks (with solutions)")
    g.add_argument("--out", default="grades", help="grades.csv, feedback/, students/, summary.md and summary.png")
    g.add_argument("--timeout", type=float, default=120, help="seconds per cell (a notebook gets 4x that)")
    g.add_argument("--jobs", type=int, default=1, help="notebooks graded at once, each in its own sandbox")
    g.add_argument("--memory", type=float, default=4.0, help="GiB of memory per notebook")
    g.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="auto: bubblewrap when it works, else none with a warning (an error with "
                        "DFL_REQUIRE_SANDBOX=1); bwrap: required; none: no isolation, limits only")
    g.add_argument("--fresh", action="store_true", help="regrade everything (default: keep unchanged finished rows)")
    g.set_defaults(run=_assign_grade)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DFLError as err:  # bad input: the message says what was wrong, no stack trace
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: say what was kept, no stack trace
        saved = {_search: ("evaluations", getattr(args, "checkpoint", None)),
                 _bench_build: ("runs", getattr(args, "out", None))}.get(args.run, ("", None))
        resume = f"; finished {saved[0]} are saved in {saved[1]}: rerun the same command to resume" if saved[1] else ""
        print(f"interrupted{resume}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
