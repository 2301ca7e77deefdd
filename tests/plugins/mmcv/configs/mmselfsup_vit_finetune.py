# MMSelfSup 0.x configs/benchmarks/classification/imagenet/vit-base-p16_ft-8xb128-coslr-100e_in1k.py, optimization part.
optimizer = dict(
    type="AdamW",
    lr=1e-3 * 1024 / 256,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    paramwise_options={
        "ln": dict(weight_decay=0.0),
        "bias": dict(weight_decay=0.0),
        "pos_embed": dict(weight_decay=0.0),
        "cls_token": dict(weight_decay=0.0),
    },
    constructor="TransformerFinetuneConstructor",
    model_type="vit",
    layer_decay=0.65,
)
lr_config = dict(
    policy="StepFixCosineAnnealing",
    min_lr=1e-6,
    warmup="linear",
    warmup_iters=1,
    warmup_ratio=1e-4,
    warmup_by_epoch=True,
    by_epoch=False,
)
runner = dict(type="EpochBasedRunner", max_epochs=3)
