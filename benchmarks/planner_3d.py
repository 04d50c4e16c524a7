"""The plan page's 3D view on loopback: time from opening the page to the first 3D frame, the bone
mesh's payload, and the server's time to build the mesh.

Usage: .venv/bin/python benchmarks/planner_3d.py [--case assets/cases/demo-lumbar] [--runs 3]

1. Mesh: the case bundle loaded (its content hash verified, as the server does) and
   `sim_core.case.glb.bone_glb` run on it, each timed; the .glb's size raw, gzip (level 6) and
   brotli (quality 5), and its triangles.
2. Data: a fresh SQLite database under var/bench-planner/, migrated, with one center, one surgeon,
   one patient, the case registered as theirs and a draft plan holding the L4 left and right
   pedicle screws at the case's landmarks.
3. Server: `osteon shell serve --no-worker --no-bridge` on a free 127.0.0.1 port (collected,
   hashed, compressed static files), its planner mesh folder empty, stopped by its pid at the end.
4. Browser: Chromium through Playwright, WebGL on SwiftShader (no GPU here: the drawing itself is
   software, slower than on a clinic PC's GPU). Each run is a fresh browser context (cold browser
   cache), signed in, then the plan page opened: the page writes `window.osteonPlanner.firstFrameMs`
   (milliseconds since navigation start) once the frame with the bones has been drawn. The first
   run finds no mesh on the server ("first": it builds the .glb in the request); the others get
   the file from disk ("cached"). Resource Timing gives the mesh request's own time and bytes.

Result: benchmarks/results/planner_3d-<date>.json (every run, and the medians).
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import brotli
import psutil

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench-planner"
VENV_BIN = REPO / ".venv" / "bin"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader"]
USERNAME = "bench.planner"
PASSWORD = "Bench-planner-2026!"
SCREW = "pedicle_screw_6.5x45"


def server_env() -> dict[str, str]:
    """The environment of the server and of this process's Django: files under var/bench-planner."""
    env = dict(os.environ)
    env.update(
        OSTEON_DATABASE_URL=f"sqlite:///{WORK / 'db.sqlite3'}",
        OSTEON_SECRET_KEY="planner-bench-only-key-0123456789abcdef0123456789abcdef",
        OSTEON_ID_HMAC_KEY="planner-bench-only-id-key-0123456789abcdef0123456789",
        OSTEON_AUDIT_KEY="planner-bench-only-audit-key-0123456789abcdef0123456",
        OSTEON_AUDIT_SIGNING_KEY="3f" * 32,
        OSTEON_KEY_DIR=str(WORK / "no-key-files"),
        OSTEON_AUDIT_CHECKPOINT_DIR=str(WORK / "audit-checkpoints"),
        OSTEON_DICOM_ROOT=str(WORK / "dicom"),
        OSTEON_CASE_ROOT=str(WORK / "cases"),
        OSTEON_MEDIA_ROOT=str(WORK / "media"),
        OSTEON_STATIC_ROOT=str(WORK / "static"),
        OSTEON_HUEY_PATH=str(WORK / "huey-tasks.sqlite3"),
        OSTEON_PLANNER_MESH_ROOT=str(WORK / "planner-meshes"),
        OSTEON_DEBUG="false",
        DJANGO_SETTINGS_MODULE="clinical_shell.settings",
    )
    return env


def measure_mesh(case: Path) -> dict[str, Any]:
    from sim_core.case.bundle import load_bundle
    from sim_core.case.glb import bone_glb, read_glb

    started = time.perf_counter()
    bundle = load_bundle(case)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    data = bone_glb(bundle)
    build_s = time.perf_counter() - started
    doc = read_glb(data)
    triangles = sum(
        doc.gltf["accessors"][m["primitives"][0]["indices"]]["count"] // 3
        for m in doc.gltf["meshes"]
    )
    return {
        "bundle_load_s": round(load_s, 3),
        "glb_build_s": round(build_s, 3),
        "server_total_s": round(load_s + build_s, 3),
        "source_triangles": int(sum(len(m.faces) for m in bundle.meshes)),
        "triangles": triangles,
        "glb_bytes": len(data),
        "glb_gzip_bytes": len(gzip.compress(data, 6)),
        "glb_brotli_bytes": len(brotli.compress(data, quality=5)),
    }


def prepare(case: Path) -> int:
    """A fresh database holding a plan with two screws on the case; returns the plan's id."""
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "planner-meshes"):
        path = WORK / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.update(server_env())
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)

    from datetime import date

    from clinical_shell.imaging.models import Series, SimulationCase, Study
    from clinical_shell.network import services as network
    from clinical_shell.network.models import Role
    from clinical_shell.planning import services as planning
    from clinical_shell.records import services as records
    from sim_core.case.bundle import load_bundle

    bundle = load_bundle(case)
    marks = {m["name"]: bundle.case_from_patient_mm(m["lps_mm"]) for m in bundle.meta["landmarks"]}
    center = network.create_institution(
        actor=None, code="BP-CENTER", name="基准州中心", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username=USERNAME, password=PASSWORD, full_name="基准医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    surgeon = person.user
    patient = records.register_patient(
        actor=surgeon, institution=center, name="李明", sex="M", birth_date=date(1960, 5, 1)
    )
    study = Study.objects.create(
        study_uid="1.2.826.0.97.1",
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=center,
        uploaded_by=surgeon,
        description="腰椎 CT",
    )
    series = Series.objects.create(
        study=study, series_uid="1.2.826.0.97.2", modality="CT", number=1
    )
    registered = SimulationCase.objects.create(
        patient=patient,
        series=series,
        path=str(case.resolve()),
        content_hash=bundle.content_hash,
        spacing_mm=bundle.spacing_mm,
        created_by=surgeon,
    )
    plan = planning.create_plan(actor=surgeon, patient=patient, case=registered, title="L4 双侧")
    for version, side in enumerate(("left", "right"), start=1):
        planning.add_element(
            actor=surgeon,
            plan=plan,
            version=version,
            data=planning.ElementData(
                kind="pedicle_screw",
                label=f"L4 {side}",
                entry_mm=[float(x) for x in marks[f"L4_pedicle_entry_{side}"]],
                target_mm=[float(x) for x in marks[f"L4_pedicle_target_{side}"]],
                implant_id=SCREW,
            ),
        )
    return int(plan.pk)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        args = ["shell", "serve", "--port", str(port), "--no-worker", "--no-bridge"]
        server = subprocess.Popen(
            [str(VENV_BIN / "osteon"), *args],
            cwd=REPO,
            env=server_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180  # collectstatic compresses the bundles on a first start
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited ({server.returncode}), see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/sign-in/", timeout=5):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    stop_server(server)
    raise SystemExit(f"server did not answer within 180 s, see {log}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `serve` (it stops its children); SIGKILL to its group if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: only what it started
            server.wait(timeout=10)


def run_once(browser: Any, base: str, plan_id: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    page.goto(f"{base}/planning/{plan_id}/")
    page.locator("#planner-3d[data-ready]").wait_for(state="attached", timeout=120_000)
    state = page.evaluate(
        """() => {
      const mesh = performance.getEntriesByType('resource')
        .find((e) => e.name.includes('bone-mesh'));
      return {
        ready: document.getElementById('planner-3d').dataset.ready,
        first_frame_ms: window.osteonPlanner.firstFrameMs,
        triangles: window.osteonPlanner.triangles,
        mesh_request_ms: mesh ? mesh.responseEnd - mesh.requestStart : null,
        mesh_transfer_bytes: mesh ? mesh.transferSize : null,
        dom_content_loaded_ms:
          performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
      };
    }"""
    )
    context.close()
    if state["ready"] != "true":
        raise SystemExit(f"the 3D view did not draw: {state}")
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in state.items()}


def machine() -> dict[str, Any]:
    chromium = subprocess.run(
        [CHROMIUM, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "chromium": chromium,
        "webgl": "SwiftShader (software)",
        "load_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=REPO / "assets" / "cases" / "demo-lumbar")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (args.case / "case.json").is_file():
        raise SystemExit(f"no case bundle at {args.case} (make demo-cases builds the demo's)")

    from playwright.sync_api import sync_playwright

    mesh = measure_mesh(args.case)
    print(
        f"mesh: load {mesh['bundle_load_s']} s + build {mesh['glb_build_s']} s; "
        f"{mesh['triangles']} triangles; {mesh['glb_bytes'] / 1e6:.2f} MB raw, "
        f"{mesh['glb_gzip_bytes'] / 1e6:.2f} MB gzip, {mesh['glb_brotli_bytes'] / 1e6:.2f} MB br"
    )
    plan_id = prepare(args.case)
    port = free_port()
    server = start_server(port, WORK / "server.log")
    runs: list[dict[str, Any]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n in range(max(args.runs, 2)):
                run: dict[str, Any] = {"mesh_on_server": "first" if n == 0 else "cached"}
                run.update(run_once(browser, f"http://127.0.0.1:{port}", plan_id))
                runs.append(run)
                print(
                    f"run {n + 1} ({run['mesh_on_server']}): first 3D frame "
                    f"{run['first_frame_ms'] / 1000:.2f} s, mesh request "
                    f"{(run['mesh_request_ms'] or 0) / 1000:.2f} s"
                )
            browser.close()
    finally:
        stop_server(server)
    cached = [r for r in runs if r["mesh_on_server"] == "cached"]
    result = {
        "benchmark": "planner_3d",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "case": str(args.case),
        "mesh": mesh,
        "first_frame_ms": {
            "first_open": runs[0]["first_frame_ms"],
            "cached_median": statistics.median(r["first_frame_ms"] for r in cached),
        },
        "mesh_request_ms": {
            "first_open": runs[0]["mesh_request_ms"],
            "cached_median": statistics.median(r["mesh_request_ms"] or 0 for r in cached),
        },
        "runs": runs,
    }
    out = REPO / "benchmarks" / "results" / f"planner_3d-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
