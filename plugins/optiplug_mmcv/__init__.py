"""optiplug_mmcv: work in progress in this session (see its issue)."""
