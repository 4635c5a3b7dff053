"""doublerandom's selection engine: risk rules, the random draw, dispatch, feedback and audit.

Usable live on its own; it never imports the simulation, SimPy or Jupyter.
"""

# The package's version, stated once: pyproject.toml reads it from here (so asking for it at start
# does not load importlib.metadata and the email package, a tenth of the command line's start-up).
__version__ = "0.1.0"
