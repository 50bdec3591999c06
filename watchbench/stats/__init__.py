"""Statistics as pure functions: the decision, per-patch steps, change points."""
