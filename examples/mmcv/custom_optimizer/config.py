"""MMSelfSup tutorial: a config naming the customized optimizer (registered by my_optimizers.py)."""
optimizer = dict(
    type='CustomizedOptim',
    lr=0.01,
    weight_decay=1e-4,
)
lr_config = dict(policy='Step', step=[2])
runner = dict(type='EpochBasedRunner', max_epochs=3)
