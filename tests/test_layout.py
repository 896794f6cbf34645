"""The README's code layout is true: it names every module of the package, and each module imports only
modules listed above it (imports for type hints aside; the `sim` provider's in-process simulator is the one
exception the README states, and `python -m runner.cli`'s hand-over to `entry`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "runner"
ALLOWED_UPWARD = {("providers", "sim"), ("entry", "cli")}


def layout_order() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Code layout", 1)[1].split("\n## ", 1)[0]
    order: list[str] = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first_cell = row.split("|")[1]
        order += [name.removesuffix(".py").rstrip("/") for name in re.findall(r"`([a-z_]+(?:\.py|/))`", first_cell)]
    return order


def unit_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def runtime_imports(path: Path) -> set[str]:
    """The package's modules `path` imports outside `if TYPE_CHECKING:` blocks, as top-level units."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    inside = path.relative_to(PACKAGE).parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(inside[: len(inside) - (node.level - 1)]) if node.level > 1 else list(inside)
                dotted = [*base, *(node.module.split(".") if node.module else [])]
                names = [".".join(dotted)] if dotted else [alias.name for alias in node.names]
            elif node.module and (node.module == "runner" or node.module.startswith("runner.")):
                rest = node.module.removeprefix("runner").lstrip(".")
                names = [rest] if rest else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.removeprefix("runner.") for a in node.names if a.name.startswith("runner.")]
        found.update(name.split(".")[0] for name in names if name)
    return found


def test_the_layout_names_every_module_once() -> None:
    order = layout_order()
    units = {unit_of(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert len(order) == len(set(order)), order
    assert set(order) == units, (sorted(units - set(order)), sorted(set(order) - units))


def test_each_module_imports_only_modules_above_it() -> None:
    rank = {name: i for i, name in enumerate(layout_order())}
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = unit_of(path)
        if me == "__init__":
            continue
        for other in runtime_imports(path):
            if other in rank and other != me and rank[other] > rank[me] and (me, other) not in ALLOWED_UPWARD:
                upward.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not upward, upward


def test_the_import_reader_sees_relative_and_absolute_imports_and_skips_type_hints() -> None:
    assert {"balance", "bugs", "entry", "errors", "images", "jobs", "live", "limits", "options", "outputs", "pacing",
            "plan", "providers", "records", "resume", "signals", "state", "stats", "sweeps"} == runtime_imports(
        PACKAGE / "executor.py")
    assert runtime_imports(PACKAGE / "providers" / "download.py") == {"errors", "limits", "outputs", "providers"}
    assert "jobs" not in runtime_imports(PACKAGE / "outputs.py")  # `Job` only as a type hint
    assert runtime_imports(PACKAGE / "textforms.py") == set()  # read by the data files, templates and sweeps
    assert runtime_imports(PACKAGE / "gittrack.py") == set()  # read by the state and the plan's warnings
    # `gridrun recover` is below the API that calls it: it records through the store, locks as a run does
    assert {"api", "cli", "executor"}.isdisjoint(runtime_imports(PACKAGE / "recover.py"))


def test_the_benchmarks_section_names_every_script_in_bench() -> None:
    """Each script `bench/` holds, its helpers too, is named in the README's Benchmarks, and only those."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+\.py)`", section))
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")}
    assert "run_bench.py" in scripts and "chaos.py" in scripts
    assert sorted(scripts - named) == [] and sorted(named - scripts) == []
