"""optiplug_cyclic: work in progress in this session (see its issue)."""
