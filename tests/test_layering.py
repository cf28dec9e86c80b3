"""One-way imports, checked against README.md's layer table: every module of src/bonelift is placed in it, and
a module imports only from the lines above its own and from the modules to its left on its line."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "bonelift"
PACKAGE_API = "__init__"  # src/bonelift/__init__.py's name in the table


def layer_table(readme: str) -> list[list[str]]:
    """The modules of every line of the `| layer | modules |` table, top (lowest layer) first, in order."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*layer\s*\|\s*modules\s*\|", line))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = line.strip().strip("|").split("|")
        described = re.sub(r"\([^()]*\)", "", cells[1])  # names in a description's parentheses are not modules
        rows.append(re.findall(r"`([\w.]+)`", described))
    return rows


def _unit(module: str) -> str | None:
    """The table entry a dotted bonelift module belongs to (a package's files count as the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _file_unit(path: Path, src: Path) -> str:
    rel = path.relative_to(src).with_suffix("")
    return PACKAGE_API if rel.parts == ("__init__",) else rel.parts[0]


def _imports(path: Path) -> set[str]:
    """bonelift modules a file imports anywhere (inside functions too); `from bonelift import x` is bonelift.x."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bonelift":
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "bonelift")
    return out


def layering_problems(src: Path, readme: str) -> list[str]:
    """Every module missing from the table and every import against its order, one line each."""
    rank = {m: (line, col) for line, row in enumerate(layer_table(readme)) for col, m in enumerate(row)}
    files = sorted(src.rglob("*.py"))
    units = {_file_unit(p, src) for p in files}
    problems = [f"{u} is not placed in README.md's layer table" for u in sorted(units - set(rank))]
    for path in files:
        me = _file_unit(path, src)
        for other in sorted({_unit(i) for i in _imports(path)} & units & set(rank) - {me}):
            if me in rank and rank[other] > rank[me]:
                where = "a higher layer" if rank[other][0] > rank[me][0] else "a module to its right on its line"
                problems.append(f"{path.relative_to(src.parent)} imports bonelift.{other}, {where}")
    return problems


def test_every_module_is_placed_and_imports_run_one_way() -> None:
    assert layering_problems(SRC, (ROOT / "README.md").read_text()) == []


def test_the_table_is_read_as_written() -> None:
    rows = layer_table((ROOT / "README.md").read_text())
    assert rows[0][:3] == ["errors", "io", "skeletons"] and rows[-1][0] == "cli"
    assert "bonelift" not in {m for row in rows for m in row}  # `bonelift models` in a description is no module


def test_an_injected_upward_import_fails(tmp_path) -> None:
    """The checker itself: an upward import, a same-line import to the right and an unplaced module."""
    tree = tmp_path / "bonelift"
    shutil.copytree(SRC, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pt", "*.mp4"))
    readme = (ROOT / "README.md").read_text()
    assert layering_problems(tree, readme) == []
    with (tree / "metrics.py").open("a") as f:
        f.write("\n\ndef _late() -> None:\n    from bonelift import reports  # noqa: F401\n")
    (tree / "io.py").write_text((tree / "io.py").read_text() + "\nfrom bonelift.cameras import Camera  # noqa\n")
    (tree / "newthing.py").write_text("from bonelift import errors  # noqa: F401\n")
    problems = layering_problems(tree, readme)
    assert "bonelift/metrics.py imports bonelift.reports, a higher layer" in problems
    assert "bonelift/io.py imports bonelift.cameras, a module to its right on its line" in problems
    assert "newthing is not placed in README.md's layer table" in problems
    assert len(problems) == 3


def test_no_import_cycles() -> None:
    def module(path: Path) -> str:
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module(p): p for p in SRC.rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    # a package's __init__ re-exports its own modules: edges into the package from inside it are not cycles
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
