"""optiplug_larc: work in progress in this session (see its issue)."""
