"""The engine is readable and testable alone: nothing under ``sim_core/`` imports ``haptics``
(nor the command line, ``osteon``, nor the shell or the bridge).

The dependency runs one way, haptics -> sim_core (the servo loop steps the engine). The
command line (every ``osteon`` subcommand's module) and the live session, which joins a
device to the engine, live in ``osteon/``. Checked statically over every import statement,
including those inside functions and the string arguments of ``importlib.import_module`` /
``__import__``.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("haptics", "osteon", "clinical_shell", "bridge")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                found.append((node.lineno, str(first.value)))
    return found


def _is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def forbidden_imports_under(package: Path) -> list[str]:
    """``path:line module`` for every import of a forbidden package under ``package``."""
    offenders = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in _imported_modules(tree):
            if _is_forbidden(module):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {module}")
    return offenders


def test_no_module_under_sim_core_imports_haptics_or_the_command_line() -> None:
    assert forbidden_imports_under(ROOT / "sim_core") == []


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    # the check itself must catch top-level, nested and dynamic imports (else it proves nothing)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import haptics.servo\n")
    (pkg / "b.py").write_text("def f():\n    from haptics.mouse import X\n")
    (pkg / "c.py").write_text("import importlib\nimportlib.import_module('haptics.registry')\n")
    (pkg / "d.py").write_text("import hapticsish\nfrom sim_core import haptics_free\n")
    (pkg / "e.py").write_text("def main():\n    from osteon.console import emit\n")
    found = [
        module
        for path in sorted(pkg.glob("*.py"))
        for _, module in _imported_modules(ast.parse(path.read_text()))
        if _is_forbidden(module)
    ]
    assert found == ["haptics.servo", "haptics.mouse", "haptics.registry", "osteon.console"]
