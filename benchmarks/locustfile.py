"""Locust users for the clinical shell load test: clinicians searching, reading records, viewing CT.

Run through benchmarks/load_test.py, which prepares the database, writes the plan this file reads
(OSTEON_LOAD_PLAN: a JSON file naming demo accounts and, per account, search terms and patients
in that account's care scope) and starts the server. By hand:

    OSTEON_LOAD_PLAN=plan.json .venv/bin/locust -f benchmarks/locustfile.py --host http://127.0.0.1:P

Each simulated clinician takes the next account of the plan (round robin: several demo accounts,
each used by one or two users), signs in once through the real sign-in form (CSRF token from the
page, credentials posted as a browser does), opens the page the sign-in lands on (the patient
list) and keeps that session for the whole run. Nothing is
retried and no wrong password is ever sent, so the lockout rule (5 failures) is never reached.

Task weights follow a ward day: most actions are a patient search (by name, pinyin initials or
ID number, as the search box takes them) usually followed by opening one of the results'
timelines; fewer go through the JSON API; few open a patient's imaging and the CT viewer, which
then fetches every image of the series, six at a time like a browser. Think time between actions:
OSTEON_LOAD_WAIT_MIN..OSTEON_LOAD_WAIT_MAX seconds (default 5..15).

Every response is checked, redirects are not followed: a page or API call must answer 200 (a
lost session would answer 302 to the sign-in page), an image must be a DICOM file, the sign-in
must answer 302 to the patient search. Anything else is an error in the statistics.

Phases: every request is recorded (start time, name, milliseconds, error) and written to
OSTEON_LOAD_RECORD when Locust quits. Once all OSTEON_LOAD_USERS users have finished signing in,
the steady phase starts and Locust is stopped OSTEON_LOAD_STEADY_S seconds later; the driver
reports the two phases apart (all users signing in within a minute is a ramp, not a ward day).
"""

import itertools
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
from gevent.pool import Pool
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

_PLAN: dict[str, Any] = json.loads(Path(os.environ["OSTEON_LOAD_PLAN"]).read_text("utf-8"))
_ACCOUNTS = itertools.cycle(_PLAN["accounts"])
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_PATIENT_LINK = re.compile(r'href="/patients/(\d+)/"')
_VIEWER_CONFIG = re.compile(
    r'<script id="osteon-viewer-config" type="application/json">(.*?)</script>', re.S
)
SIGN_IN = "/accounts/sign-in/"
USERS = int(os.environ.get("OSTEON_LOAD_USERS", "0"))
STEADY_S = float(os.environ.get("OSTEON_LOAD_STEADY_S", "0"))
RECORD = os.environ.get("OSTEON_LOAD_RECORD", "")
# the viewer's image loader fetches this many images at once (a browser's per-host limit)
IMAGE_FETCHES_AT_ONCE = 6

# (start time, name, milliseconds, error or ""), one per request
_requests: list[tuple[float, str, float, str]] = []
_run: dict[str, Any] = {"signed_in": 0, "steady_from": None, "steady_s": STEADY_S}


def _record(
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:300]
    _requests.append((start_time or time.time(), name, response_time, error))


def _write_record(**_: Any) -> None:
    if RECORD:
        Path(RECORD).write_text(json.dumps({**_run, "requests": _requests}), encoding="utf-8")


# Locust's add_listener has no annotations
events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_write_record)  # type: ignore[no-untyped-call]


def _signed_in(user: "Clinician") -> None:
    """Count finished sign-ins (failed ones too: they will not be retried); after the last,
    stop the run STEADY_S seconds later."""
    _run["signed_in"] += 1
    if _run["signed_in"] == USERS and STEADY_S > 0:
        _run["steady_from"] = time.time()
        runner = user.environment.runner
        if runner is not None:
            gevent.spawn_later(STEADY_S, runner.quit)


class Clinician(FastHttpUser):
    wait_time = between(
        float(os.environ.get("OSTEON_LOAD_WAIT_MIN", "5")),
        float(os.environ.get("OSTEON_LOAD_WAIT_MAX", "15")),
    )
    # the image fetches of one viewer run on this user's own connection pool
    concurrency = IMAGE_FETCHES_AT_ONCE

    account: dict[str, Any]

    def on_start(self) -> None:
        self.account = next(_ACCOUNTS)
        page = self._page(SIGN_IN, "/accounts/sign-in/ [form]")
        token = _CSRF.search(page)
        form = {
            "csrfmiddlewaretoken": token.group(1) if token else "",
            "username": self.account["username"],
            "password": self.account["password"],
        }
        with self.client.post(
            SIGN_IN,
            data=form,
            name="/accounts/sign-in/ [post]",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            location = response.headers.get("Location", "") if response.headers else ""
            if response.status_code != 302 or not location.endswith("/patients/"):
                response.failure(f"sign-in as {self.account['username']}: {response.status_code}")
        # where the sign-in lands: the search page with no query lists the patients in care
        self._page("/patients/", "/patients/ (landing, no query)")
        _signed_in(self)

    def _page(self, url: str, name: str) -> str:
        """GET a page without following redirects: a lost session (redirect to the sign-in page)
        is a failure, not a second request that succeeds."""
        with self.client.get(
            url, name=name, allow_redirects=False, catch_response=True
        ) as response:
            text = response.text or ""
            if response.status_code != 200:
                response.failure(f"{response.status_code} {url}")
            return text

    def _api(self, url: str, name: str) -> Any:
        with self.client.get(url, name=name, allow_redirects=False, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {url}")
                return None
            try:
                return json.loads(r.text or "")
            except ValueError:
                r.failure(f"not JSON: {url}")
                return None

    def _search_term(self) -> tuple[str, str]:
        kind = random.choices(("name", "pinyin", "id"), weights=(3, 2, 1))[0]
        pool = {"name": "names", "pinyin": "initials", "id": "resident_ids"}[kind]
        return kind, random.choice(self.account[pool])

    @task(6)
    def search_and_open(self) -> None:
        """The search box, then (most of the time) one patient from the results."""
        kind, text = self._search_term()
        page = self._page(f"/patients/?q={quote(text)}", f"/patients/?q=[{kind}]")
        found = _PATIENT_LINK.findall(page)
        if found and random.random() < 0.8:
            self._page(f"/patients/{random.choice(found)}/", "/patients/[id]/")

    @task(2)
    def open_known_patient(self) -> None:
        """A patient already on the clinician's list (ward round): straight to the timeline."""
        self._page(f"/patients/{random.choice(self.account['patient_ids'])}/", "/patients/[id]/")

    @task(2)
    def api_search_and_timeline(self) -> None:
        """The JSON API with the session, as a page script would call it."""
        kind, text = self._search_term()
        found = self._api(f"/api/v1/patients?q={quote(text)}", f"/api/v1/patients?q=[{kind}]")
        items = found.get("items", []) if isinstance(found, dict) else []
        if items:
            patient = random.choice(items)["id"]
            self._api(f"/api/v1/patients/{patient}/encounters", "/api/v1/patients/[id]/encounters")

    @task(1)
    def imaging(self) -> None:
        """A patient's imaging page and its API list; the CT viewer with all its images when
        the account's scope holds a study (center staff), else only the (empty) list."""
        studies = self.account["series"]
        if studies:
            chosen = random.choice(studies)
            patient, series = chosen["patient_id"], chosen["series_id"]
        else:
            patient, series = random.choice(self.account["patient_ids"]), None
        self._page(f"/imaging/patients/{patient}/", "/imaging/patients/[id]/")
        self._api(
            f"/api/v1/imaging/studies?patient_id={patient}", "/api/v1/imaging/studies?patient_id"
        )
        if series is None:
            return
        page = self._page(f"/imaging/series/{series}/", "/imaging/series/[id]/ (viewer)")
        config = _VIEWER_CONFIG.search(page)
        urls: list[str] = json.loads(config.group(1))["imageUrls"] if config else []
        if not urls:
            return
        Pool(IMAGE_FETCHES_AT_ONCE).map(self._image, urls)

    def _image(self, url: str) -> None:
        with self.client.get(
            url, name="/imaging/instances/[id]/file", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200 or (response.content or b"")[128:132] != b"DICM":
                response.failure(f"{response.status_code} {url}")
