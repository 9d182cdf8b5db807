"""The import walls (docs/ARCHITECTURE.md), read from the source: every import statement of every module, also
those inside functions, plus `__import__` / `importlib.import_module` calls on a constant name.

- analysis/, detectors/, video/ and pipeline/ import no streamlit, fastapi or ray;
- the core (analysis, detectors, video, visualization, pipeline) never imports train, ui, api, scan, the pages or
  the CLI;
- inside the core each package imports only the ones below it: detectors <- analysis <- video <- visualization, and
  pipeline (the dispatch of a path to the image, video or audio pipeline) over analysis and video;
- the front-ends are siblings over the core: cli.py, api/, scan/ and the dashboard (app.py, pages/, ui/) do not
  import one another. They meet only in the command-line layer: cli_common.py (imported by cli.py, api/cli.py and
  scan/cli.py, importing only the core) and cli.py, which mounts the `serve` and `scan` subcommands from
  api/cli.py and scan/cli.py;
- train/ uses the core only (no front-end), and nothing but train/ imports train/.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("analysis", "detectors", "video", "visualization", "pipeline", "train", "scan", "api", "ui")
CORE = {"analysis", "detectors", "video", "visualization", "pipeline"}
NO_SERVER_FRAMEWORKS = {"analysis", "detectors", "video", "pipeline"}
SERVER_FRAMEWORKS = {"streamlit", "fastapi", "ray"}
FRONT_ENDS = {"cli": "cli", "api": "api", "scan": "scan", "ui": "dashboard", "pages": "dashboard", "app": "dashboard"}
CLI_LAYER = {"cli", "api.cli", "scan.cli"}
# The core's layers: each package and the core packages it may import. The video engine builds on the analysis
# core, visualization (pictures, charts, the HTML report) on both; pipeline dispatches a path to analysis or video.
CORE_BELOW = {"detectors": set(), "analysis": {"detectors"}, "video": {"analysis", "detectors"},
              "visualization": {"analysis", "detectors", "video"}, "pipeline": {"analysis", "detectors", "video"}}


@dataclass(frozen=True)
class Edge:
    source: str       # importing module, e.g. "pipeline.dispatch"
    target: str       # imported module (or module.name for `from module import name`)
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files() -> list[Path]:
    files = [ROOT / "cli.py", ROOT / "cli_common.py", ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    for package in PACKAGES:
        files += sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def imports_of(path: Path) -> list[Edge]:
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            edges += [Edge(source, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            edges.append(Edge(source, module, node.lineno))
            edges += [Edge(source, f"{module}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                edges.append(Edge(source, node.args[0].value, node.lineno))
    return edges


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return [e for path in project_files() for e in imports_of(path)]


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_walk_sees_imports_inside_functions_and_relative_ones(tmp_path, edges):
    sources = {e.source for e in edges}
    assert {"cli", "cli_common", "app", "analysis.analyzer", "video.engine", "train.fit", "ui.runner"} <= sources
    # a function-level import of the video engine and a relative one inside video/
    assert any(e.source == "pipeline.dispatch" and e.target == "video.engine" for e in edges)
    assert any(e.source == "video.engine" and e.target == "video.decode" for e in edges)


def test_analysis_detectors_and_video_import_no_server_framework(edges):
    bad = [e.where for e in edges if top(e.source) in NO_SERVER_FRAMEWORKS and top(e.target) in SERVER_FRAMEWORKS]
    assert not bad, bad


def test_the_core_never_imports_training_or_a_front_end(edges):
    above = {"train", "cli", "cli_common", *FRONT_ENDS}
    bad = [e.where for e in edges if top(e.source) in CORE and top(e.target) in above]
    assert not bad, bad


def test_inside_the_core_each_package_imports_only_the_ones_below_it(edges):
    # in particular analysis imports neither video nor pipeline, and video neither visualization nor pipeline
    bad = [e.where for e in edges if top(e.source) in CORE and top(e.target) in CORE
           and top(e.target) != top(e.source) and top(e.target) not in CORE_BELOW[top(e.source)]]
    assert not bad, bad


def test_front_ends_are_siblings_over_the_core(edges):
    bad = []
    for e in edges:
        mine, theirs = FRONT_ENDS.get(top(e.source)), FRONT_ENDS.get(top(e.target))
        if mine is None or theirs is None or mine == theirs:
            continue
        # cli.py mounts the `serve` and `scan` subcommands: it reaches api/ and scan/ only through their CLI modules
        if e.source == "cli" and ".".join(e.target.split(".")[:2]) in CLI_LAYER:
            continue
        bad.append(e.where)
    assert not bad, bad


def test_the_shared_cli_module_is_imported_by_the_cli_layer_only_and_imports_only_the_core(edges):
    users = {e.source for e in edges if top(e.target) == "cli_common"}
    assert users == CLI_LAYER
    own = {top(e.target) for e in edges if e.source == "cli_common"}
    assert not own & {"cli", "api", "scan", "ui", "pages", "app", "train"}, own


def test_training_uses_the_core_only_and_only_training_uses_it(edges):
    bad = [e.where for e in edges if top(e.source) == "train" and top(e.target) in {"cli_common", *FRONT_ENDS}]
    bad += [e.where for e in edges if top(e.source) != "train" and top(e.target) == "train"]
    assert not bad, bad


def test_no_hidden_imports_or_sys_path_edits():
    hidden, path_edits = [], []
    for path in project_files() + sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "bench").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":
                path_edits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hidden, hidden
    assert not path_edits, path_edits


def test_the_detector_registry_imports_no_architecture_and_detectors_has_no_import_cycle(edges):
    """Each architecture registers itself (detectors/__init__.py imports them); the registry only knows the
    contract. Among detectors' modules no import statement, also inside a function, closes a cycle."""
    modules = {module_name(p) for p in (ROOT / "detectors").rglob("*.py") if "__pycache__" not in p.parts}

    def resolve(target: str) -> str | None:   # `from m import name` also yields m.name
        return target if target in modules else target.rpartition(".")[0] if target.rpartition(".")[0] in modules \
            else None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        target = resolve(e.target)
        if e.source in modules and target is not None and target != e.source:
            graph[e.source].add(target)
    assert graph["detectors.registry"] == {"detectors.contract"}
    assert {"detectors.xception", "detectors.efficientnet_b3", "detectors.swin", "detectors.cross_attention",
            "detectors.cnn_transformer"} <= graph["detectors"]
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module not in done:
            for target in sorted(graph[module]):
                visit(target, path + [module])
            done.add(module)

    for module in sorted(modules):
        visit(module, [])
