"""MMSelfSup tutorial, warmup example 2: an exponential warmup over 5 epochs (the lr still moves every iteration)."""
optimizer = dict(type='SGD', lr=0.3, momentum=0.9, weight_decay=1e-6)
lr_config = dict(
    policy='CosineAnnealing',
    min_lr=0,
    warmup='exp',
    warmup_iters=5,
    warmup_ratio=0.1,
    warmup_by_epoch=True)
runner = dict(type='EpochBasedRunner', max_epochs=100)
