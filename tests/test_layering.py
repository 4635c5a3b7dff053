"""The layers point one way: the engine imports neither the simulation nor SimPy, Dask, matplotlib or
Jupyter, and nothing adds commands to the engine's app behind its back."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = {
    "simulation",
    "simpy",
    "dask",
    "distributed",
    "matplotlib",
    "jupyter",
    "IPython",
    "ipywidgets",
    "papermill",
    "doublerandom",
    "lightgbm",  # the model extra: loaded only with a model file
}


def test_the_import_contracts_hold():
    """import-linter checks pyproject's contracts over every import statement, top-level or inside a
    function: the engine below everything, replay and simulation independent, the root on top."""
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "0 broken" in done.stdout, done.stdout[-3000:] + done.stderr


def test_importing_the_whole_engine_loads_none_of_them():
    code = (
        "import sys, engine.cli, engine.service, engine.office, engine.replay, engine.reconciliation, "
        "engine.checkpoint; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *FORBIDDEN], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_composition_root_mounts_both_and_mutates_neither():
    import engine.cli
    import simulation.cli
    from doublerandom.cli import app

    def names(a):
        return {c.name or c.callback.__name__ for c in a.registered_commands}

    assert "run" not in names(engine.cli.app) and "select" not in names(simulation.cli.app)
    assert {"select", "serve", "run", "sweep", "tune", "import", "evaluate"} <= names(app)
    assert {g.name for g in app.registered_groups} == {"audit", "db", "integrity", "rules", "model"}


# What `pip install doublerandom` leaves out (the sim and service extras): made unimportable below.
EXTRAS_ONLY = [
    "simpy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "scipy",
    "dask",
    "distributed",
    "fastapi",
    "uvicorn",
    "starlette",
    "psycopg",
    "psycopg_pool",
    "lightgbm",
]
WITHOUT_EXTRAS = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None  # import fails, as if not installed\n"
    "import importlib.util\n"
    "real = importlib.util.find_spec\n"
    "importlib.util.find_spec = lambda n, *a: None if n.split('.')[0] in sys.argv[1].split(',') else "
    "real(n, *a)\n"
    "from doublerandom.cli import app\n"
    "app(sys.argv[2:])\n"
)


def without_extras(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, ",".join(EXTRAS_ONLY), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_engine_runs_without_the_extras():
    """Validate and select work with only the engine's own dependencies; a simulation or service
    command says which extra to install, without a traceback."""
    assert without_extras("validate", "scenarios/rules/baseline.yaml").returncode == 0
    done = without_extras(
        "select",
        "--rules",
        "scenarios/rules/baseline.yaml",
        "--enterprises",
        "scenarios/declarations/enterprises.csv",
        "--input",
        "scenarios/declarations/sample.jsonl",
        "--seed",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1000
    for command, extra in (
        (["run", "scenarios/baseline.yaml"], "sim"),
        (["serve", "--rules", "x", "--db", "y", "--key-file", "k", "--api-keys", "a"], "service"),
        (["audit", "verify", "postgresql://postgres@127.0.0.1/test"], "postgres"),
        (
            [
                "select",
                "--rules",
                "scenarios/rules/baseline.yaml",
                "--db",
                "-",
                "--model",
                "m",
                "--seed",
                "1",
            ],
            "model",
        ),
    ):
        refused = without_extras(*command)
        assert refused.returncode == 2 and f"doublerandom[{extra}]" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_the_code_is_linted_and_formatted_to_the_projects_line_length():
    """ruff's lint (pyflakes, pycodestyle, isort, bugbear) and its formatter, with pyproject's settings."""
    paths = ["engine", "simulation", "replay", "doublerandom", "tests", "benchmarks", "tools"]
    ruff = str(ROOT / ".venv" / "bin" / "ruff")
    lint = subprocess.run([ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout[-3000:]
    formatted = subprocess.run(
        [ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert formatted.returncode == 0, formatted.stdout[-3000:]


def test_the_command_line_starts_with_typer_alone():
    """The commands load what they use when they run: the live office (numpy), the signing code
    (cryptography), the scenario model (pandas), pydantic's models, rich's console and the YAML
    reader, so `--help` starts with typer and the standard library alone (issue 24: those were most
    of a start that took 15x a bare interpreter). `validate` adds what a rules file needs: pydantic,
    YAML and durable-rules."""
    heavy = {"numpy", "cryptography", "pandas", "pydantic", "rich", "yaml", "sqlite3", "email", "durable"}
    for root in ("engine.cli", "doublerandom.cli"):  # the engine's commands, and all the commands
        code = f"import sys, {root}; print(sorted({heavy!r} & {{m.split('.')[0] for m in sys.modules}}))"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and done.stdout.strip() == "[]", (root, done.stdout + done.stderr)
