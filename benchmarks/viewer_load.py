"""CT viewer load on a county link: time to the first image, time to every slice, bytes per open.

Usage: .venv/bin/python benchmarks/viewer_load.py [--runs 3] [--mbits 4 10 100] [--latency-ms 40]
           [--slices 60] [--matrix 256] [--variants gzip identity] [--visits cold warm]
           [--out benchmarks/results/viewer_load-<date>-<suffix>.json]

The 300-slice 512 x 512 CT of the issue (157 MB of DICOM: one open takes minutes at 4 Mbit/s):
    .venv/bin/python benchmarks/viewer_load.py --slices 300 --matrix 512 --runs 1 \
        --variants gzip --visits cold --suffix 300

1. Data: a fresh SQLite database under var/bench-viewer/, migrated, with one center, one surgeon
   and one patient, whose CT is the demo patient's (clinical_shell/demo.py: the lumbar phantom,
   seed 1, CT_SLICES x CT_MATRIX^2, 16-bit, uncompressed DICOM) unless --slices/--matrix say
   otherwise.
2. Server: `osteon shell serve --no-worker --no-bridge` on a free 127.0.0.1 port, as in
   production (collectstatic: hashed, brotli- and gzip-compressed static files), stopped by its
   pid at the end whatever happens.
3. Browser: Chromium (/usr/bin/chromium) through Playwright. Each run is a fresh browser context
   (cold cache), signed in before throttling; then `Network.emulateNetworkConditions` (CDP) sets
   the link: --latency-ms round trip and the same --mbits down and up; the viewer page is opened
   ("cold"), then opened again in the same context ("warm": static files from the cache).
   Measured per open: time to the first image and to every slice drawn in the three views (the
   viewer writes both on its root, milliseconds since navigation start, after the frame is
   drawn), and the bytes received (`Network.loadingFinished` encodedDataLength, headers
   included), split into slices and everything else.
4. Variants: "gzip" is the shell as it is (slices gzipped for a browser that asks); "identity"
   asks for slices uncompressed, which is what every open paid before the slice endpoint
   compressed. Chromium does not let a page or Playwright's routing change Accept-Encoding, so
   the browser talks to a loopback relay in this process (`Relay`) that rewrites it on slice
   requests in the "identity" variant; both variants go through the relay. Before this change
   the viewer also drew nothing until every slice had arrived, so the old time to the first
   image is the "identity" time to every slice.

Result: benchmarks/results/viewer_load-<date>[-<suffix>].json (medians over --runs, and every run).
"""

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench-viewer"
VENV_BIN = REPO / ".venv" / "bin"
CHROMIUM = "/usr/bin/chromium"
USERNAME = "bench.viewer"
PASSWORD = "Bench-viewer-2026!"
SLICE_PATH = "/imaging/instances/"
READY_TIMEOUT_MS = 600_000


def server_env() -> dict[str, str]:
    """The environment of the server and of this process's Django: files under var/bench-viewer."""
    env = dict(os.environ)
    env.update(
        OSTEON_DATABASE_URL=f"sqlite:///{WORK / 'db.sqlite3'}",
        OSTEON_SECRET_KEY="viewer-bench-only-key-0123456789abcdef0123456789abcdef",
        OSTEON_ID_HMAC_KEY="viewer-bench-only-id-key-0123456789abcdef0123456789",
        OSTEON_AUDIT_KEY="viewer-bench-only-audit-key-0123456789abcdef0123456",
        OSTEON_AUDIT_SIGNING_KEY="2e" * 32,
        OSTEON_KEY_DIR=str(WORK / "no-key-files"),
        OSTEON_AUDIT_CHECKPOINT_DIR=str(WORK / "audit-checkpoints"),
        OSTEON_DICOM_ROOT=str(WORK / "dicom"),
        OSTEON_CASE_ROOT=str(WORK / "cases"),
        OSTEON_MEDIA_ROOT=str(WORK / "media"),
        OSTEON_STATIC_ROOT=str(WORK / "static"),
        OSTEON_HUEY_PATH=str(WORK / "huey-tasks.sqlite3"),
        OSTEON_DEBUG="false",
        DJANGO_SETTINGS_MODULE="clinical_shell.settings",
    )
    return env


def prepare(slices: int | None, matrix: int | None) -> dict[str, Any]:
    """A fresh database with the patient's CT (the demo's size unless given); returns the series
    id and what it holds."""
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "dicom", "phantom"):
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

    from clinical_shell.demo import CT_MATRIX, CT_SLICES
    from clinical_shell.imaging import services as imaging
    from clinical_shell.imaging.models import Series
    from clinical_shell.network import services as network
    from clinical_shell.network.models import Role
    from clinical_shell.records import services as records
    from sim_core.ct.phantom import make_phantom, write_phantom

    slices = slices or CT_SLICES
    matrix = matrix or CT_MATRIX
    center = network.create_institution(
        actor=None, code="BV-CENTER", name="基准州中心", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username=USERNAME, password=PASSWORD, full_name="基准医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user, institution=center, name="李明", sex="M", birth_date=date(1990, 5, 1)
    )
    files = write_phantom(
        make_phantom("lumbar", seed=1, slices=slices, matrix=matrix), WORK / "phantom"
    )
    handles = [(f.name, f.open("rb")) for f in files]
    try:
        report = imaging.import_upload(
            actor=person.user, institution=center, files=handles, patient=patient
        )
    finally:
        for _, handle in handles:
            handle.close()
    if report.refused:
        raise SystemExit(f"import refused: {report.refused}")
    series = Series.objects.get(instances__sop_uid=report.stored[0]["sop_uid"])
    return {
        "series_id": series.pk,
        "slices": slices,
        "matrix": matrix,
        "dicom_bytes": sum(f.stat().st_size for f in files),
    }


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
    # collectstatic compresses the viewer bundle on the first start: allow for it
    deadline = time.monotonic() + 180
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


# headers that belong to one hop, not to the request or response passed on
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


class Relay(ThreadingHTTPServer):
    """A loopback relay in front of the server: the browser talks to it, it to the server.

    With `identity_slices` set it asks the server for slices uncompressed, as every open did
    before the slice endpoint compressed; everything else passes unchanged (static files keep
    their brotli). Both variants go through it, so its own cost is in both.
    """

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.upstream_port = upstream_port
        self.identity_slices = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a closed browser context drops its idle keep-alive connections: not an error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RelayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as between a browser and the server
    server: Relay

    def log_message(self, *args: Any) -> None:
        return  # quiet: the run prints its own results

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.server.identity_slices and SLICE_PATH in self.path:
            headers = {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
            headers["Accept-Encoding"] = "identity"
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            content = response.read()
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        finally:
            upstream.close()

    # the handler's method names are the base class's protocol
    do_GET = do_POST = do_HEAD = _relay  # noqa: N815


def open_viewer(page: Any, cdp: Any, url: str) -> dict[str, Any]:
    """Open the viewer once; times (ms since navigation start) and bytes received."""
    received: dict[str, int] = {}
    urls: dict[str, str] = {}
    encodings: dict[str, str] = {}

    def on_response(event: dict[str, Any]) -> None:
        urls[event["requestId"]] = event["response"]["url"]
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        encodings[event["requestId"]] = headers.get("content-encoding", "")

    def on_finished(event: dict[str, Any]) -> None:
        received[event["requestId"]] = int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    page.goto(url)
    page.wait_for_selector(
        "#osteon-viewer[data-state=ready][data-all-slices-ms]", timeout=READY_TIMEOUT_MS
    )
    root = page.locator("#osteon-viewer")
    first_ms = float(root.get_attribute("data-first-image-ms") or "nan")
    # when the sagittal and coronal views first showed (filling in, or complete)
    reformats_ms = float(root.get_attribute("data-reformats-ms") or "nan")
    all_ms = float(root.get_attribute("data-all-slices-ms") or "nan")
    cdp.remove_listener("Network.responseReceived", on_response)
    cdp.remove_listener("Network.loadingFinished", on_finished)
    slice_ids = [rid for rid, u in urls.items() if SLICE_PATH in u]
    slice_bytes = sum(received.get(rid, 0) for rid in slice_ids)
    return {
        "first_image_ms": round(first_ms),
        "reformats_ms": round(reformats_ms) if reformats_ms == reformats_ms else None,
        "all_slices_ms": round(all_ms),
        "bytes": sum(received.values()),
        "slice_bytes": slice_bytes,
        "other_bytes": sum(received.values()) - slice_bytes,
        "requests": len(received),
        "slices_gzipped": sum(1 for rid in slice_ids if encodings.get(rid) == "gzip"),
    }


def run_once(
    browser: Any,
    relay: Relay,
    series_id: int,
    link: tuple[float, float],
    variant: str,
    visits: list[str],
) -> dict[str, Any]:
    """A fresh context (cold cache): sign in, throttle, open the viewer once per visit (the
    first "cold", the next "warm": static files from the cache)."""
    mbits, latency_ms = link
    relay.identity_slices = variant == "identity"
    base = relay.url
    context = browser.new_context(viewport={"width": 1500, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{base}/accounts/sign-in/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
        bytes_per_s = mbits * 1_000_000 / 8
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": latency_ms,
                "downloadThroughput": bytes_per_s,
                "uploadThroughput": bytes_per_s,
            },
        )
        viewer = f"{base}/imaging/series/{series_id}/"
        return {visit: open_viewer(page, cdp, viewer) for visit in visits}
    finally:
        context.close()


def medians(runs: list[dict[str, Any]], visit: str) -> dict[str, float | None]:
    """Per measure, the median of the runs that have it (a radiograph has no reformats)."""
    found: dict[str, list[float]] = {k: [] for k in runs[0][visit]}
    for run in runs:
        for k, value in run[visit].items():
            if value is not None:
                found[k].append(value)
    return {k: statistics.median(v) if v else None for k, v in found.items()}


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
        "load_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mbits", type=float, nargs="+", default=[4.0, 10.0, 100.0])
    parser.add_argument("--latency-ms", type=float, default=40.0)
    # the demo patient's CT (clinical_shell/demo.py) unless given
    parser.add_argument("--slices", type=int, default=None)
    parser.add_argument("--matrix", type=int, default=None)
    parser.add_argument("--variants", nargs="+", choices=["gzip", "identity"], default=None)
    parser.add_argument("--visits", nargs="+", choices=["cold", "warm"], default=None)
    # the result file's name: viewer_load-<date>-<suffix>.json (a series of another size)
    parser.add_argument("--suffix", default="")
    args = parser.parse_args()
    variants: list[str] = args.variants or ["gzip", "identity"]
    visits: list[str] = sorted(args.visits or ["cold", "warm"])  # cold opens first

    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    study = prepare(args.slices, args.matrix)
    port = free_port()
    server = start_server(port, WORK / "server.log")
    relay = Relay(port)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    links: list[dict[str, Any]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for mbits in args.mbits:
                for variant in variants:
                    runs = [
                        run_once(
                            browser,
                            relay,
                            study["series_id"],
                            (mbits, args.latency_ms),
                            variant,
                            visits,
                        )
                        for _ in range(args.runs)
                    ]
                    link = {
                        "mbit_per_s": mbits,
                        "latency_ms": args.latency_ms,
                        "variant": variant,
                        **{visit: medians(runs, visit) for visit in visits},
                        "runs": runs,
                    }
                    links.append(link)
                    print(
                        f"{mbits:>5} Mbit/s {variant:>8}: "
                        + "; ".join(
                            f"{visit}: first image {link[visit]['first_image_ms'] / 1000:.2f} s, "
                            f"reformats {(link[visit]['reformats_ms'] or 0) / 1000:.2f} s, "
                            f"all slices {link[visit]['all_slices_ms'] / 1000:.2f} s, "
                            f"{link[visit]['bytes'] / 1e6:.2f} MB"
                            for visit in visits
                        ),
                        flush=True,
                    )
            browser.close()
    finally:
        relay.shutdown()
        stop_server(server)
    report = {
        "benchmark": "viewer_load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        # 1, 5 and 15 minute load averages when the run began (the machine's at its end)
        "load_at_start": load_at_start,
        "series": study,
        "runs_per_link": args.runs,
        "links": links,
        "seconds": round(time.perf_counter() - started, 1),
    }
    suffix = f"-{args.suffix}" if args.suffix else ""
    out = REPO / "benchmarks" / "results" / f"viewer_load-{datetime.now(UTC).date()}{suffix}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
