"""optiplug_restarts: work in progress in this session (see its issue)."""
