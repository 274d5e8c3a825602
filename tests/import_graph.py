"""The package dependency graph of ``auditstream``, read from the source (every import statement,
those inside functions and ``TYPE_CHECKING`` blocks included).

``python -m tests.import_graph`` prints who imports whom, layer by layer, and any import that
goes up or sideways; ``tests/unit/test_layers.py`` fails on one.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("auditstream.errors", "auditstream.__init__"),
    ("auditstream.schemas",),
    ("auditstream.config",),
    ("auditstream.pipeline",),
    ("auditstream.producers", "auditstream.sinks", "auditstream.store"),
    ("auditstream.api",),
    ("auditstream.cli", "auditstream.demo", "auditstream.log_setup", "auditstream.__main__"),
)
"""Bottom to top. A unit may import units of lower layers and itself, nothing else; the top
layer (the application) may also import its own units. ``auditstream.__init__`` (the package
itself, loaded before any of its modules) holds only the version."""

SUBPACKAGE_FOLDERS = ("schemas", "config", "pipeline", "producers", "sinks", "store", "api")
OUTSIDE = ("tests", "devservices", "bench")
"""Top-level packages of the repository that the product must never import."""


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (absolute)
    file: Path
    line: int


def product_modules() -> dict[str, Path]:
    """``module name -> file`` for every module of the installed package."""
    out: dict[str, Path] = {}
    for path in sorted((ROOT / "auditstream").glob("*.py")):
        out[f"auditstream.{path.stem}"] = path
    for folder in SUBPACKAGE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(["auditstream", *parts])] = path
    return out


def imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(module, a.name, path, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append(Import(module, target, path, node.lineno))
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def unit_of(module: str) -> str | None:
    """The layer unit (e.g. ``auditstream.sinks``) that ``module`` belongs to; None for a module
    outside the package."""
    if module == "auditstream":
        return "auditstream.__init__"
    best: str | None = None
    for layer in LAYERS:
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and (
                best is None or len(unit) > len(best)
            ):
                best = unit
    return best


def layer_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def violations(modules: dict[str, Path] | None = None) -> list[str]:
    """Every import of the product that goes up a layer, sideways to another unit of the same
    layer, out to the repository's non-product packages, or to a top-level folder by its bare
    name (which would load a second copy of the module)."""
    modules = product_modules() if modules is None else modules
    bad: list[str] = []
    for module, path in modules.items():
        source_unit = unit_of(module)
        if source_unit is None:
            bad.append(f"{_shown(path)}: {module} belongs to no layer; add it to LAYERS")
            continue
        for imp in imports_of(module, path):
            where = f"{_shown(imp.file)}:{imp.line}: {module} imports {imp.target}"
            top = imp.target.split(".")[0]
            if top in OUTSIDE or top in SUBPACKAGE_FOLDERS:
                bad.append(f"{where} (outside the installed package)")
                continue
            target_unit = unit_of(imp.target)
            if target_unit is None or target_unit == source_unit:
                continue
            up = layer_of(target_unit) > layer_of(source_unit)
            application = len(LAYERS) - 1
            sideways = layer_of(target_unit) == layer_of(source_unit) != application
            if up or sideways:
                bad.append(f"{where} ({'upward' if up else 'sideways'})")
    return bad


def graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """``unit -> units it imports`` (itself excluded)."""
    modules = product_modules() if modules is None else modules
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        source = unit_of(module)
        if source is None:
            continue  # reported by violations()
        edges[source]
        for imp in imports_of(module, path):
            target = unit_of(imp.target)
            if target is not None and target != source:
                edges[source].add(target)
    return dict(edges)


def outside_imports(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports of ``forbidden`` top-level packages by files under ``folder``."""
    bad: list[str] = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for imp in imports_of(folder, path):
            if imp.target.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)}:{imp.line}: imports {imp.target}")
    return bad


def main() -> int:
    edges = graph()
    for i, layer in reversed(list(enumerate(LAYERS))):
        for unit in layer:
            if unit in edges:
                print(f"{i} {unit:<24} -> {', '.join(sorted(edges[unit])) or '(nothing)'}")
    bad = violations()
    for line in bad:
        print("violation:", line)
    print(f"{len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
