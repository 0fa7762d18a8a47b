"""Every distribution the code imports is declared in pyproject.toml: homegrid/ in ``dependencies``, tests/ in
those and the ``test`` extra. A module that comes only through another package's dependencies would go
the day that package drops it (the tests used scipy through pvlib and requests through pypowerwall so)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares them (``Tesla_Fleet.API`` is ``tesla-fleet-api``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    """The distributions named in pyproject's ``dependencies`` and the given extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = [*project["dependencies"], *(s for e in extras for s in project["optional-dependencies"][e])]
    return {normalized(re.match(r"[A-Za-z0-9._-]+", s).group()) for s in specs}  # type: ignore[union-attr]


def imported(folder: Path) -> dict[str, list[str]]:
    """Top-level module -> the files (as ``folder/...``) that import it absolutely."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], []).append(str(path.relative_to(folder.parent)))
    return found


@cache
def distributions() -> dict[str, list[str]]:
    return packages_distributions()


def undeclared(folder: Path, allowed: set[str], own: set[str]) -> list[str]:
    """One line for each third-party module imported under ``folder`` whose distribution is not ``allowed``."""
    problems = []
    for module, files in sorted(imported(folder).items()):
        if module in sys.stdlib_module_names or module in own:
            continue
        dists = {normalized(d) for d in distributions().get(module, [])}
        if not dists:
            problems.append(f"{module} (imported by {files[0]}) is not installed by any distribution")
        elif not dists & allowed:
            problems.append(f"{module} (imported by {files[0]}) comes from {', '.join(sorted(dists))}, "
                            "which pyproject.toml does not declare")
    return problems


def test_every_module_homegrid_imports_is_a_declared_dependency():
    assert undeclared(ROOT / "homegrid", declared(), own={"homegrid"}) == []


def test_every_module_the_tests_import_is_declared_for_them():
    # bench/ is this repository's folder of benchmarks, beside tests/ (its scoring and its check are tested); its
    # scripts import each other as top-level modules (bench/ on sys.path), and so do the tests of them
    bench_modules = {p.stem for p in (ROOT / "bench").rglob("*.py") if ".venv" not in p.parts}  # emhass/ too
    assert undeclared(ROOT / "tests", declared("test"), own={"homegrid", "tests", "bench"} | bench_modules) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import scipy.optimize\n", {"scipy"}),
    ("from paho.mqtt import client\nimport os, json\n", {"paho", "os", "json"}),
    ("from . import sibling\nfrom .x import y\n", set()),
])
def test_the_import_finder_sees_absolute_imports_only(tmp_path, source, expected):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "m.py").write_text(source)
    assert set(imported(folder)) == expected


def test_an_undeclared_import_is_named_with_its_distribution(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("import numpy\nimport os\n")
    assert undeclared(tmp_path / "pkg", allowed=set(), own=set()) == [
        "numpy (imported by pkg/m.py) comes from numpy, which pyproject.toml does not declare"]
    assert undeclared(tmp_path / "pkg", allowed={"numpy"}, own=set()) == []
