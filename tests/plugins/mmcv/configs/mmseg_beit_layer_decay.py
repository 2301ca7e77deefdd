# MMSegmentation 0.x configs/beit/upernet_beit-base_8x2_640x640_160k_ade20k.py, optimization part.
optimizer = dict(
    _delete_=True,
    type="AdamW",
    lr=3e-5,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    constructor="LayerDecayOptimizerConstructor",
    paramwise_cfg=dict(num_layers=2, layer_decay_rate=0.9),
)
lr_config = dict(
    _delete_=True,
    policy="poly",
    warmup="linear",
    warmup_iters=3,
    warmup_ratio=1e-6,
    power=1.0,
    min_lr=0.0,
    by_epoch=False,
)
runner = dict(type="IterBasedRunner", max_iters=10)
