"""SimPy model of a customs office that pushes declarations through the same engine over simulated months.

from simulation import scenario, run
results = run(scenario.load("scenarios/baseline.yaml"), seed=1)
"""

__all__ = ["run"]


def __getattr__(name: str):
    """`simulation.run` on first use: importing the package (the CLI does) does not load SimPy."""
    if name == "run":
        from simulation.model import run

        return run
    raise AttributeError(f"module 'simulation' has no attribute {name!r}")
