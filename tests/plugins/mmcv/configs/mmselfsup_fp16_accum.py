# MMSelfSup 0.x's BYOL fp16 + accumulation (byol_resnet50_8xb256-fp16-accum2-coslr-100e_in1k.py):
# the train API builds GradAccumFp16OptimizerHook(**optimizer_config, **fp16).
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-6)
optimizer_config = dict(update_interval=2)
fp16 = dict(loss_scale=512.0)
lr_config = dict(policy="CosineAnnealing", min_lr=0.0, warmup="linear", warmup_iters=2, warmup_ratio=1e-4)
runner = dict(type="EpochBasedRunner", max_epochs=3)
custom_hooks = [dict(type="BYOLHook", end_momentum=1.0)]
