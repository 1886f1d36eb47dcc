"""The packages' layers, read from the code's own imports: the kernel under `pbx`, under the domain packages, under the
panel, under the composition root (`callcenter`), and no import that goes up or round in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What each package may import of ours (anything else is a layer broken).
ALLOWED = {
    "kernel": set(),
    "pbx": {"kernel"},
    "acd": {"kernel", "pbx"},
    "ivr": {"kernel", "pbx"},
    "recordings": {"kernel", "pbx"},
    "reports": {"kernel", "pbx"},
    "cti_panel": {"kernel", "pbx", "acd", "recordings", "reports"},
    "callcenter": {"kernel", "pbx", "acd", "ivr", "recordings", "reports", "cti_panel"},
}


def imports() -> list[tuple[str, str, str]]:
    """(package, imported package, file:line) for every import of one of our packages by another, lazy ones included."""
    found = []
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level
                    else []
                )
                for name in names:
                    target = name.split(".")[0]
                    if target in ALLOWED and target != package:
                        found.append((package, target, f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"))
    return found


def test_every_import_goes_down_the_layers():
    broken = [where for package, target, where in imports() if target not in ALLOWED[package]]
    assert not broken, "imports against the layers:\n" + "\n".join(broken)


def test_the_allowed_layers_have_no_cycle():
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(step == goal or (step not in seen and reaches(step, goal, seen | {step})) for step in ALLOWED[start])

    assert not [p for p in ALLOWED if reaches(p, p)]


def test_every_package_of_ours_has_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert packages == set(ALLOWED)
