"""Layering rules: the core is napari-free, and importing the package is cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6")


def _import_and_list(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_package_import_is_light():
    mods = _import_and_list("napari_crack_al")
    heavy = {m for m in mods if m.split(".")[0] in {"torch", "napari", "qtpy", "PyQt5", "PyQt6", "PySide6", "magicgui"}}
    assert not heavy, f"importing napari_crack_al pulled in {sorted(heavy)}"


def _core_modules() -> list[str]:
    src = ROOT / "src" / "napari_crack_al"
    mods = []
    for path in sorted((src / "core").rglob("*.py")):
        rel = path.relative_to(src.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


@pytest.mark.parametrize("module", _core_modules())
def test_core_module_never_imports_gui(module):
    mods = _import_and_list(module)
    bad = {m for m in mods if m.split(".")[0] in FORBIDDEN_IN_CORE}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_import_linter_contract():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("import-linter is part of the [testing] extra; install it")
    res = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_cli_parser_imports_no_torch():
    mods = _import_and_list("napari_crack_al.cli.main")
    code = "from napari_crack_al.cli.main import build_parser; build_parser(); import sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"
    assert not {m for m in mods if m.split(".")[0] in FORBIDDEN_IN_CORE}


def _module_imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports anywhere in its text
    (top level, inside functions, under ``TYPE_CHECKING``)."""
    import ast

    src = ROOT / "src"
    files = {}
    for path in (src / "napari_crack_al").rglob("*.py"):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in files else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        edges[name] = {d for d in deps if d in files and d != name}
    return edges


def test_no_two_modules_import_each_other():
    edges = _module_imports()
    assert len(edges) > 50  # the walk found the package
    circles = sorted({tuple(sorted((a, b))) for a, deps in edges.items() for b in deps
                      if a in edges.get(b, ()) and not (a.startswith(b + ".") or
                                                         b.startswith(a + "."))})
    assert circles == [], f"import circles: {circles}"
