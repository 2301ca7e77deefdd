import copy

_base_ = [
    "../_base_/models/faster_rcnn_r50_fpn.py",
    "../_base_/datasets/coco_detection.py",
    "../_base_/schedules/schedule_1x.py",
]
num_classes = 80
class_weight = [1.0] * num_classes + [0.1]
image_size = (1024, 1024)
scales = [(int(image_size[0] * r), int(image_size[1] * r)) for r in (0.5, 1.0, 2.0)]
model = dict(neck={{_base_.model.neck}}, roi_head=dict(bbox_head=dict(loss_cls=dict(class_weight=class_weight))))
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
base_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", img_scale=(1333, 800), keep_ratio=True),
    dict(type="Normalize", **img_norm_cfg),
]
train_pipeline = copy.deepcopy(base_pipeline)
train_pipeline[2] = dict(type="Resize", img_scale=scales, multiscale_mode="value", keep_ratio=True)
train_pipeline.insert(3, dict(type="RandomFlip", flip_ratio=0.5))
data = dict(samples_per_gpu=8, train=dict(pipeline=train_pipeline))
optimizer = dict(lr=0.02 * 8 * 8 / 16, paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
optimizer_config = dict(_delete_=True, grad_clip=dict(max_norm=35, norm_type=2))
steps = [int(100 * s) for s in (0.88, 0.96)]
lr_config = dict(warmup_iters=1000, step=steps)
runner = dict(type="EpochBasedRunner", max_epochs=max(steps) + 4)
evaluation = dict(interval=max(steps) // 8, metric=["bbox"])
work_dir = f"./work_dirs/faster_rcnn_{num_classes}c_{image_size[0]}"
