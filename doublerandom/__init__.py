"""The `doublerandom` distribution's composition root: the command line that mounts the engine's
commands (`engine.cli`) and the simulation's (`simulation.cli`). Neither mutates the other."""
