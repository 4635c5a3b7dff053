"""The roles a service key can hold, listed once: the keys file (engine.apikeys) and the `apikey`
command read them here, a module of its own so the command line lists them without loading the keys
file's models."""

ROLES = ("selector", "inspector", "chief", "releasing_officer", "auditor", "risk_officer", "agency")
