"""``visionloop prelabel`` and ``visionloop select``: model predictions for the catalog, and the
items humans should label next."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from visionloop.cli.context import MODEL_HELP, current_project, model_argument
from visionloop.cli.executor_options import ExecutorOption, RayAddressOption
from visionloop.cli.output import print_json, stderr, stdout
from visionloop.project.executor import choose_executor

PRELABEL_HELP = """Predict labels for catalog items with MODEL (a training run id or a model folder).

Stores each item's prediction (with the model version, per-object scores and an item score)
and an embedding per image, as a pre-label run that 'visionloop select' and 'visionloop
autolabel' read. Images are decoded by worker processes while the model runs, JPEGs at a
reduced scale when the model shrinks them anyway. Predictions are committed every --chunk
items: after a crash or Ctrl-C, continue with --resume RUN_ID.
"""

SELECT_HELP = """Choose the BUDGET unlabelled items humans should label next.

Strategies: random; least-confidence, margin, entropy (the model's uncertainty); k-center
(coverage of the embedding space); typical-cluster (cold start: the most typical item of each
uncovered cluster); hybrid (the most uncertain items, spread out by k-center). All but random
read the newest pre-label run (or --prelabel RUN). --class-balance splits the budget over the
predicted classes. The selection is stored as a run.
"""

AUTOLABEL_HELP = """Accept the model's labels for unlabelled items where that is provably safe.

Calibrates a score threshold (one overall, or --per-class) on human-labelled items the model
did not train on, so that with probability --confidence the accepted labels are at least
--target-accuracy accurate (an exact Clopper-Pearson bound, thresholds tested in a fixed
sequence). Boxes and masks count as right when every object matches at IoU >= --match,
keypoints at OKS >= --match. When the held-out set is too small nothing is accepted and the
report says how many more labels are needed. Accepted labels are stored with provenance 'auto'
and this run; human labels always win. An --audit share of them is listed for humans to check
('visionloop audit RUN' then judges them). Reads the newest pre-label run unless --prelabel RUN
is given.
"""

AUDIT_HELP = """Judge an autolabel run by the audit items humans have labelled since.

Compares each human label with the auto label it checks. When the disagreements show, at the
run's confidence, that the accepted labels miss the run's target accuracy, the run is revoked:
its auto labels stop counting (status, snapshots, training, the unlabelled pool) but stay in
the history. --no-revoke only reports.
"""


def prelabel(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    items: Annotated[
        str, typer.Option(help="Which items: unlabeled (no annotation yet), labeled or all.")
    ] = "unlabeled",
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Images per forward pass.")] = 32,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=1024,
            help="Decoding worker processes (local; default one per core) or Ray actors (ray; default "
            "the project's executor.workers).",
        ),
    ] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Items per commit (and per embeddings file).")] = 1024,
    limit: Annotated[int | None, typer.Option(min=1, help="Predict at most this many items.")] = None,
    draft: Annotated[
        bool,
        typer.Option(
            "--draft/--no-draft",
            help="Decode JPEGs at a reduced scale, and resize in the decoding workers, when possible.",
        ),
    ] = True,
    resume: Annotated[str | None, typer.Option(help="Continue an interrupted pre-label run.")] = None,
    runtime: Annotated[
        str, typer.Option(help="auto (ONNX Runtime when the model has a current ONNX export), onnx or torch.")
    ] = "auto",
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.active.prelabel import PrelabelOptions, default_workers
    from visionloop.active.prelabel import prelabel as run_prelabel

    if items not in ("unlabeled", "labeled", "all"):
        raise typer.BadParameter("use unlabeled, labeled or all", param_hint="--items")
    if runtime not in ("auto", "onnx", "torch"):
        raise typer.BadParameter("use auto, onnx or torch", param_hint="--runtime")
    project = current_project(ctx)
    settings = choose_executor(project.config.executor, executor, ray_address)
    if workers is None:
        workers = settings.workers if settings.kind == "ray" else default_workers()
    options = PrelabelOptions(
        items=items,  # type: ignore[arg-type]  # checked above
        batch_size=batch_size,
        workers=workers,
        chunk=chunk,
        limit=limit,
        draft=draft,
        runtime=runtime,  # type: ignore[arg-type]  # checked above
        executor=settings.kind,
        ray_address=settings.address,
    )
    folder = model_argument(project, model)
    with _ProgressBar("pre-labeling", quiet=json_output) as update:
        report = run_prelabel(project, folder, options, resume_run=resume, progress=update)
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"[bold green]pre-labeled[/] {report.predicted} items with {report.model_version} "
        f"on {report.runtime} "
        f"({report.images_per_second:.1f} images/s; {report.already_done} done before) in run {report.run_id}"
    )
    if report.runtime_note:
        stderr.print(f"[yellow]note:[/] {report.runtime_note}")
    for failure in report.failed[:10]:
        stderr.print(f"[yellow]skipped[/] {failure['reason']}")
    if len(report.failed) > 10:
        stderr.print(f"[yellow]... and {len(report.failed) - 10} more unreadable images[/]")
    stdout.print(f"next: visionloop select --strategy hybrid --budget 100 --prelabel {report.run_id}")


def select(
    ctx: typer.Context,
    budget: Annotated[int, typer.Option(min=1, help="How many items to choose.")],
    strategy: Annotated[str, typer.Option(help="Selection strategy (see above).")] = "hybrid",
    prelabel_run: Annotated[
        str | None,
        typer.Option("--prelabel", help="Pre-label run to read. Default: the newest finished one."),
    ] = None,
    class_balance: Annotated[
        bool, typer.Option("--class-balance", help="Split the budget evenly over the predicted classes.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for random choices and tie breaks.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.active.select import select_items

    project = current_project(ctx)
    report = select_items(
        project, strategy, budget, prelabel_run=prelabel_run, class_balance=class_balance, seed=seed
    )
    if json_output:
        print_json(report.to_dict())
        return
    stdout.print(
        f"[bold green]selected[/] {len(report.items)} of {report.pool} unlabelled items by {report.strategy} "
        f"(run {report.run_id})"
    )
    for uri in report.uris[:20]:
        stdout.print(f"  {uri}")
    if len(report.uris) > 20:
        stdout.print(f"  ... and {len(report.uris) - 20} more (--json lists all)")


class _ProgressBar:
    """A rich bar on stderr fed by ``update(done, total)``; silent with --json."""

    def __init__(self, title: str, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = Progress(
            TextColumn(f"[bold]{title}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=stderr,
        )
        self.task: Any = None

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        self.progress.start()
        self.task = self.progress.add_task("run", total=None)

        def update(done: int, total: int) -> None:
            self.progress.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.progress.stop()


# The calibration options, shared by 'autolabel' and 'loop'.
TargetAccuracy = Annotated[
    float, typer.Option(min=0.5, max=0.9999, help="Accuracy the auto-accepted labels must reach.")
]
Confidence = Annotated[float, typer.Option(min=0.5, max=0.9999, help="Probability that the guarantee holds.")]
AuditShare = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Share of accepted labels listed for a human audit.")
]


def autolabel(
    ctx: typer.Context,
    target_accuracy: TargetAccuracy = 0.95,
    confidence: Confidence = 0.95,
    audit: AuditShare = 0.02,
    per_class: Annotated[
        bool,
        typer.Option(
            "--per-class/--global",
            help="One threshold per predicted class (needs a few hundred held-out items per class), "
            "or one overall.",
        ),
    ] = False,
    match: Annotated[
        float, typer.Option(min=0.05, max=1.0, help="IoU (boxes, masks) or OKS (keypoints) for a match.")
    ] = 0.5,
    object_score: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Objects scoring below this are left out of a label.")
    ] = 0.5,
    prelabel_run: Annotated[
        str | None,
        typer.Option("--prelabel", help="Pre-label run to read. Default: the newest finished one."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Calibrate and count, but store no labels.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for the audit sample.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.active.autolabel import AutolabelOptions
    from visionloop.active.autolabel import autolabel as run_autolabel

    project = current_project(ctx)
    options = AutolabelOptions(
        target_accuracy=target_accuracy,
        confidence=confidence,
        audit=audit,
        per_class=per_class,
        match=match,
        object_score=object_score,
        seed=seed,
        dry_run=dry_run,
    )
    report = run_autolabel(project, options, prelabel_run=prelabel_run)
    if json_output:
        print_json(report.to_dict())
        return
    verb = "would accept" if dry_run else "auto-accepted"
    stdout.print(
        f"[bold green]{verb}[/] {report.accepted} of {report.candidates} unlabelled items "
        f"({report.coverage:.1%}) at >= {target_accuracy:.1%} accuracy with {confidence:.0%} confidence "
        f"(calibrated on {report.calibration_items} held-out items; run {report.run_id})"
    )
    for group, entry in sorted(report.thresholds.items()):
        threshold = "none" if entry["threshold"] is None else f"{entry['threshold']:.4f}"
        stdout.print(f"  {group}: threshold {threshold} {entry['reason']}".rstrip())
    if report.labels_needed:
        stdout.print(
            f"[yellow]label about {report.labels_needed} more held-out items to certify the target[/]"
        )
    for note in report.notes:
        stderr.print(f"[yellow]note:[/] {note}")
    if report.audit_items:
        stdout.print(
            f"{len(report.audit_items)} accepted items are listed for a human audit (--json shows them)"
        )


def audit(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The autolabel run to audit.")],
    revoke: Annotated[
        bool, typer.Option("--revoke/--no-revoke", help="Revoke the run when the audit refutes it.")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    from visionloop.active.audit import audit_autolabel

    report = audit_autolabel(current_project(ctx), run, revoke=revoke)
    if json_output:
        print_json(report.to_dict())
        return
    if report.audited == 0:
        stdout.print(f"none of the {report.audit_items} audit items has a human label yet")
        return
    colour = "red" if report.revoked else "green"
    verdict = "revoked" if report.revoked else "upheld"
    stdout.print(
        f"[bold {colour}]{verdict}[/]: {report.reason} ({report.audited} of {report.audit_items} "
        "audit items checked)"
    )
