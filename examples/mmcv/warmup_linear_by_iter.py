"""MMSelfSup tutorial, warmup example 1: a linear warmup counted in iterations (20 epochs of 1252)."""
optimizer = dict(type='SGD', lr=0.3, momentum=0.9, weight_decay=1e-6)
lr_config = dict(
    policy='CosineAnnealing',
    by_epoch=False,
    min_lr_ratio=1e-2,
    warmup='linear',
    warmup_ratio=1e-3,
    warmup_iters=20 * 1252,
    warmup_by_epoch=False)
runner = dict(type='EpochBasedRunner', max_epochs=100)
