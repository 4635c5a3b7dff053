"""SimPy model of a customs office that pushes declarations through the same engine over simulated months."""
