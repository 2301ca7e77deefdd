# An MMSegmentation 0.x schedule written the old way: total_iters and no runner
# (mmseg.apis.train_segmentor makes an IterBasedRunner of it).
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0005)
optimizer_config = dict()
lr_config = dict(policy="poly", power=0.9, min_lr=1e-4, by_epoch=False)
total_iters = 40
checkpoint_config = dict(by_epoch=False, interval=20)
evaluation = dict(interval=20, metric="mIoU")
