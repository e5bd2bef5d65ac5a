"""Where a comparison's runs execute besides this machine's worker processes: `ray.py` (a Ray cluster)."""

BACKENDS = ("local", "ray")
