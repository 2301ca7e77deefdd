# MMClassification 0.x's fp16 config (configs/fp16/resnet50_b32x8_fp16_imagenet.py), optimization part:
# the train API builds Fp16OptimizerHook(**optimizer_config, **fp16).
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(policy="step", step=[30, 60, 90])
runner = dict(type="EpochBasedRunner", max_epochs=100)
fp16 = dict(loss_scale=512.0)
