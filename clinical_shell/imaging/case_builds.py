"""Building a simulation case from a CT series: the estimate, and the task a worker runs.

`case_build_task` is the body of the "case_build" job (see tasks.py): it builds the bundle into a
work directory beside the case root, the builder renames it into the job's own case path, and
the case row, the job's "done" and their audit event commit together. A run that dies (worker
killed), fails or is cancelled leaves nothing at the case path: the next run, or the job's end
hook, removes what a dead run left (`remove_leftovers`).
"""

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinical_shell.audit import services as audit
from clinical_shell.imaging.models import CaseBuildJob, Instance, Series, SimulationCase
from clinical_shell.imaging.uploads import dicom_root
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.running import JobContext, JobFailedError

# the builder's own default and the range it accepts [mm]
DEFAULT_CASE_SPACING_MM = 0.5
CASE_SPACING_RANGE_MM = (0.2, 2.0)
BUILDABLE_MODALITIES = frozenset({"CT"})
# the builder reports "中文 / English" steps; the job stores the Chinese part, a msgid of these
BUILD_STEPS = (
    gettext_noop("读取 DICOM"),
    gettext_noop("重采样"),
    gettext_noop("骨分割"),
    gettext_noop("表面网格"),
    gettext_noop("写入病例"),
    gettext_noop("病例已生成"),
)


def case_root() -> Path:
    return Path(settings.OSTEON_CASE_ROOT)


def estimate_case_build_bytes(series: Series, spacing_mm: float) -> int:
    """Memory a build of `series` at `spacing_mm` may need [bytes], before reading any pixel.

    The builder's own estimate (sim_core.case.build._check_case_budget) for the whole field of
    view: it crops to the bone first, so this is an upper bound; the builder checks its cropped
    need again against the same limit once it has read the volume.
    """
    import pydicom

    from sim_core.case.build import BUILD_BYTES_PER_VOXEL

    instances = Instance.objects.filter(series=series)
    first = instances.order_by("slice_position_mm", "number", "id").first()
    if first is None:
        return 0
    count = instances.count()
    positions = [p for p in instances.values_list("slice_position_mm", flat=True) if p is not None]
    header = pydicom.dcmread(dicom_root() / first.relative_path, stop_before_pixels=True)
    row_mm, column_mm = (float(v) for v in getattr(header, "PixelSpacing", (1.0, 1.0)))
    slice_mm = float(getattr(header, "SliceThickness", 0) or 1.0)
    depth_mm = (max(positions) - min(positions)) if len(positions) > 1 else count * slice_mm
    extent_mm = (depth_mm, first.rows * row_mm, first.columns * column_mm)
    voxels = int(np.prod([int(e / spacing_mm) + 1 for e in extent_mm]))
    source_bytes = count * first.rows * first.columns * np.dtype(np.int16).itemsize
    return voxels * BUILD_BYTES_PER_VOXEL + source_bytes


def _work_dir(build: CaseBuildJob) -> Path:
    return case_root() / f".work-{build.pk}"


def remove_leftovers(build: CaseBuildJob) -> None:
    """Remove what a run that did not finish left: its work directory, the builder's temporary
    siblings of the case path, and a bundle renamed into place whose case row never committed.

    Precondition: the build's job is not done (a done job's bundle is its case).
    """
    out = Path(build.case_path)
    shutil.rmtree(_work_dir(build), ignore_errors=True)
    for sibling in out.parent.glob(f".{out.name}.*"):
        shutil.rmtree(sibling, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def _series_link_dir(build: CaseBuildJob, work: Path) -> Path:
    """A directory of links to exactly the series' indexed instances (not stray files)."""
    linked = work / "series"
    linked.mkdir(parents=True)
    for relative in Instance.objects.filter(series_id=build.series_id).values_list(
        "relative_path", flat=True
    ):
        source = dicom_root() / relative
        os.symlink(source, linked / source.name)
    return linked


def _plain_error(exc: Exception, *hidden: Path) -> str:
    """The builder's message for people: server paths replaced by what they name."""
    from sim_core.ct.errors import SeriesError

    if isinstance(exc, SeriesError):
        name = Path(exc.path).name
        text = exc.problem if Path(exc.path).is_dir() else f"{name}: {exc.problem}"
    else:
        text = str(exc)
    for path in hidden:
        text = text.replace(str(path), _("序列"))
    return text


def build_of_job(job: Job) -> CaseBuildJob:
    return CaseBuildJob.objects.select_related("series__study", "requested_by").get(job=job)


def case_build_task(context: JobContext) -> None:
    """The "case_build" task: build the bundle, then commit the case with the job's "done".

    A series the builder refuses fails the job with the builder's reason (not retried); an
    I/O error is raised for the jobs app to retry; a cancel stops it at the builder's next step.
    """
    from sim_core.case.build import CaseBuildError, build_case
    from sim_core.ct.errors import SeriesError

    build = build_of_job(context.job)
    out = Path(build.case_path)
    work = _work_dir(build)
    # a run before this one may have died anywhere: start from nothing
    remove_leftovers(build)
    try:
        series_dir = _series_link_dir(build, work)
        result = build_case(
            series_dir,
            out,
            series_uid=build.series.series_uid,
            spacing_mm=build.spacing_mm,
            memory_budget_bytes=int(settings.OSTEON_JOB_MEMORY_LIMIT_BYTES),
            progress=lambda step, fraction: context.progress(step.split(" / ")[0], fraction),
        )
        # before "done" commits: a done build leaves nothing but its bundle
        shutil.rmtree(work)
        _finish(context, build, result)
    except (SeriesError, CaseBuildError) as exc:
        remove_leftovers(build)
        raise JobFailedError(_plain_error(exc, work / "series", out)) from exc
    except BaseException:
        # cancelled, an I/O error (retried), superseded or worse: nothing half-written stays,
        # unless this run lost its job to another run, whose bundle the same path may now hold
        if not _superseded(context):
            remove_leftovers(build)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _superseded(context: JobContext) -> bool:
    return not Job.objects.filter(
        pk=context.job_id, status=Job.Status.RUNNING, attempts=context.attempt
    ).exists()


@transaction.atomic
def _finish(context: JobContext, build: CaseBuildJob, result: dict[str, Any]) -> None:
    # the job first: if it was cancelled or taken from this run, nothing below commits
    context.complete(gettext_noop("病例已生成"))
    case = SimulationCase.objects.create(
        patient_id=build.patient_id,
        series_id=build.series_id,
        path=build.case_path,
        content_hash=str(result["content_hash"]),
        spacing_mm=build.spacing_mm,
        bones=result["bones"],
        created_by_id=build.requested_by_id,
    )
    build.case = case
    build.save(update_fields=["case"])
    audit.record(
        actor=build.requested_by,
        action="case.build",
        patient_id=build.patient_id,
        target=case,
        detail={
            "job_id": build.pk,
            "attempt": context.attempt,
            "content_hash": case.content_hash,
            "timings_s": result.get("timings_s", {}),
        },
    )


def end_case_build(job: Job) -> None:
    """The job ended failed or cancelled (in that transaction): audit it on the patient's record
    and remove what its runs left."""
    build = build_of_job(job)
    remove_leftovers(build)
    audit.record(
        actor=build.requested_by,
        action="case.build_cancel" if job.status == Job.Status.CANCELLED else "case.build",
        success=job.status == Job.Status.CANCELLED,
        patient_id=build.patient_id,
        target=build,
        detail={"job_id": job.pk, "status": job.status, "error": job.error[:500]},
    )
