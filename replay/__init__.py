"""Replaying a real declaration log: import it (replay.log, with a mapping), evaluate policies on it
through the engine's batch speed (replay.evaluate)."""
