"""The layers point one way: the engine imports neither the simulation nor SimPy, Dask, matplotlib or
Jupyter, and nothing adds commands to the engine's app behind its back."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = {"simulation", "simpy", "dask", "distributed", "matplotlib", "jupyter", "IPython", "ipywidgets",
             "papermill", "doublerandom"}


def test_no_engine_module_names_a_forbidden_package():
    """Every import statement in engine/, top-level or inside a function."""
    offenders = []
    for path in sorted((ROOT / "engine").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_whole_engine_loads_none_of_them():
    code = ("import sys, engine.cli, engine.service, engine.office, engine.replay, engine.reconciliation, "
            "engine.checkpoint; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))")
    done = subprocess.run([sys.executable, "-c", code, *FORBIDDEN], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_composition_root_mounts_both_and_mutates_neither():
    import engine.cli
    import simulation.cli
    from doublerandom.cli import app
    names = lambda a: {c.name or c.callback.__name__ for c in a.registered_commands}
    assert "run" not in names(engine.cli.app) and "select" not in names(simulation.cli.app)
    assert {"select", "serve", "run", "sweep", "tune"} <= names(app)
    assert {g.name for g in app.registered_groups} == {"audit", "integrity"}
