"""doublerandom's selection engine: risk rules, the random draw, dispatch, feedback and audit.

Usable live on its own; it never imports the simulation, SimPy or Jupyter.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("doublerandom")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
