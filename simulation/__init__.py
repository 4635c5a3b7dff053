"""SimPy model of a customs office that pushes declarations through the same engine over simulated months.

    from simulation import scenario, run
    results = run(scenario.load("scenarios/baseline.yaml"), seed=1)
"""

from simulation.model import run

__all__ = ["run"]
