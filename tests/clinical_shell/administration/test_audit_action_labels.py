"""The audit log speaks words, not codes: every action code the shell writes has a label
(Chinese, English on English pages); a code without one is shown as it is; the page, the CSV
export and the API carry the label beside the code, and filtering by code still works."""

import ast
import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Personas

from clinical_shell.audit import services as audit
from clinical_shell.audit.labels import ACTION_LABELS

ROOT = Path(__file__).resolve().parents[3]
DOTTED = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
WORD = re.compile(r"^[a-z_]+$")


class _ActionCodes(ast.NodeVisitor):
    """String constants that reach an audit action in one module.

    Found where they are written: `action=` / `audit_action=` arguments, defaults and
    assignments of a name `action`, the arguments of an `_audit(...)` helper, both sides of
    `a if c else b` and `x or "default"`. `f"referral.{action}"` is expanded with the module's
    bare words passed as an action (`action="send"`).
    """

    def __init__(self) -> None:
        self.codes: set[str] = set()
        self.words: set[str] = set()
        self.prefixes: set[str] = set()

    def take(self, node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if DOTTED.match(node.value):
                self.codes.add(node.value)
            elif WORD.match(node.value):
                self.words.add(node.value)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.take(value)
        elif isinstance(node, ast.IfExp):
            self.take(node.body)
            self.take(node.orelse)
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and str(head.value).endswith("."):
                self.prefixes.add(str(head.value))

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg in ("action", "audit_action"):
                self.take(keyword.value)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "_audit":
            for arg in node.args:
                self.take(arg)
        self.generic_visit(node)

    def _defaults(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        positional = args.posonlyargs + args.args
        with_default = positional[len(positional) - len(args.defaults) :]
        for arg, default in [
            *zip(with_default, args.defaults, strict=True),
            *zip(args.kwonlyargs, args.kw_defaults, strict=True),
        ]:
            if arg.arg == "action":
                self.take(default)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._defaults(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._defaults(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "action" for t in node.targets):
            self.take(node.value)
        self.generic_visit(node)


def action_codes_in_use() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ("clinical_shell", "bridge", "streaming"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            visitor = _ActionCodes()
            visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            expanded = {p + w for p in visitor.prefixes for w in visitor.words}
            for code in visitor.codes | expanded:
                found.setdefault(code, path.relative_to(ROOT))
    return found


def test_every_action_code_the_shell_writes_has_a_label() -> None:
    in_use = action_codes_in_use()
    # the collector itself must see the codes written in each way (keyword, f-string, helper)
    assert {"patient.read", "referral.send", "imaging_report.sign", "live.voice.join"} <= set(
        in_use
    )
    missing = {code: str(path) for code, path in in_use.items() if code not in ACTION_LABELS}
    assert missing == {}


def _signed_in(client_for: Callable[[User], Client], user: User, language: str) -> Client:
    client = client_for(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def test_the_log_shows_labels_in_the_page_language_and_unknown_codes_as_they_are(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    audit.record(actor=personas.county_surgeon, action="patient.read", patient_id=4242)
    audit.record(actor=personas.county_surgeon, action="plugin.unheard_of", patient_id=4242)
    zh = _signed_in(signed_in_client, personas.admin, "zh-hans")
    page = zh.get("/administration/audit/", {"patient_id": "4242"}).content.decode()
    assert "查看患者档案" in page and '<code class="muted">patient.read</code>' in page
    assert "plugin.unheard_of" in page
    en = _signed_in(signed_in_client, personas.admin, "en")
    page = en.get("/administration/audit/", {"patient_id": "4242"}).content.decode()
    assert "Patient record opened" in page and "查看患者档案" not in page
    assert "<th>Action</th>" in page  # the column names one action per row
    # filtering by a code prefix still works, and the box offers codes by their labels
    filtered = en.get("/administration/audit/", {"action": "plugin."})
    assert [e.action for e in filtered.context["page"]] == ["plugin.unheard_of"]
    assert '<option value="patient.read">Patient record opened</option>' in page


def test_the_export_and_the_api_carry_the_label_beside_the_code(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    audit.record(actor=personas.county_surgeon, action="referral.send", patient_id=7)
    audit.record(actor=personas.county_surgeon, action="plugin.unheard_of", patient_id=7)
    client = _signed_in(signed_in_client, personas.admin, "zh-hans")
    response = client.get("/administration/audit/export.csv", {"patient_id": "7"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["action"], r["action_label"]) for r in rows] == [
        ("plugin.unheard_of", "plugin.unheard_of"),
        ("referral.send", "发出转诊"),
    ]
    api = client.get("/api/v1/administration/audit", {"patient_id": 7})
    labels = {e["action"]: e["action_label"] for e in api.json()["items"]}
    assert labels["referral.send"] == "发出转诊"
    assert labels["plugin.unheard_of"] == "plugin.unheard_of"
