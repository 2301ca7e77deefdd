"""optiplug_vissl: work in progress in this session (see its issue)."""
