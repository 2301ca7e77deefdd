# mmpretrain 1.2.0's _base_/schedules/imagenet_bs256_200e_coslr_warmup.py, its run shortened
# (200 epochs -> 10, the warmup 5 -> 2) for a fast test.
# Copyright (c) OpenMMLab. Licensed under the Apache License, Version 2.0.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001))

# learning policy
param_scheduler = [
    # warm up learning rate scheduler
    dict(
        type='LinearLR',
        start_factor=0.25,
        by_epoch=True,
        begin=0,
        end=2,
        # update by iter
        convert_to_iter_based=True,
    ),
    # main learning rate scheduler
    dict(
        type='CosineAnnealingLR',
        T_max=8,
        by_epoch=True,
        begin=2,
        end=10,
    )
]

# train, val, test setting
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=256)
