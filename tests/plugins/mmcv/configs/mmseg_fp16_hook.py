# MMSegmentation 0.x's fp16 configs: the hook type in optimizer_config, fp16 = dict() a placeholder.
optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0005)
optimizer_config = dict(type="Fp16OptimizerHook", loss_scale="dynamic")
lr_config = dict(policy="poly", power=0.9, min_lr=1e-4, by_epoch=False)
runner = dict(type="IterBasedRunner", max_iters=20)
fp16 = dict()
