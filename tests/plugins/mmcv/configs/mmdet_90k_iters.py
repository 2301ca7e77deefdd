# MMDetection 2.x's schedule of a 90k-iteration run (configs/_base_/schedules), scaled to 90 iterations:
# an IterBasedRunner and an lr_config without by_epoch, which the runner sets to False.
optimizer = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", warmup="linear", warmup_iters=5, warmup_ratio=0.001, step=[60, 80])
runner = dict(type="IterBasedRunner", max_iters=90)
checkpoint_config = dict(interval=30)
evaluation = dict(interval=30, metric="bbox")
