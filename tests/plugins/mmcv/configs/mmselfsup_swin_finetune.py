# MMSelfSup 0.x configs/benchmarks/classification/imagenet/swin-base_ft-8xb256-coslr-100e_in1k.py, optimization part.
optimizer = dict(
    type="AdamW",
    lr=1.25e-3 * 2048 / 512,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    eps=1e-8,
    paramwise_options={
        "norm": dict(weight_decay=0.0),
        "bias": dict(weight_decay=0.0),
        "absolute_pos_embed": dict(weight_decay=0.0),
        "relative_position_bias_table": dict(weight_decay=0.0),
    },
    constructor="TransformerFinetuneConstructor",
    model_type="swin",
    layer_decay=0.9,
)
optimizer_config = dict(grad_clip=dict(max_norm=5.0))
lr_config = dict(policy="CosineAnnealing", min_lr=2.5e-7 * 2048 / 512, by_epoch=False)
runner = dict(type="EpochBasedRunner", max_epochs=2)
