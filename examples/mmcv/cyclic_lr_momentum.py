"""MMSelfSup tutorial: a cyclic lr with the inverse cyclic momentum, to converge faster.

MMSelfSup 0.x never registered momentum_config (it is silently ignored there); optiplug applies it.
"""
optimizer = dict(type='SGD', lr=0.1, momentum=0.95, weight_decay=1e-4)
lr_config = dict(
    policy='cyclic',
    target_ratio=(10, 1e-4),
    cyclic_times=1,
    step_ratio_up=0.4,
)
momentum_config = dict(
    policy='cyclic',
    target_ratio=(0.85 / 0.95, 1),
    cyclic_times=1,
    step_ratio_up=0.4,
)
runner = dict(type='EpochBasedRunner', max_epochs=3)
