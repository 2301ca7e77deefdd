"""optiplug_adamw: work in progress in this session (see its issue)."""
