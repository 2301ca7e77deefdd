norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    type="FasterRCNN",
    backbone=dict(
        type="ResNet",
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=norm_cfg,
        norm_eval=True,
        style="pytorch",
    ),
    neck=dict(type="FPN", in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    roi_head=dict(
        type="StandardRoIHead",
        bbox_head=dict(
            type="Shared2FCBBoxHead",
            num_classes=80,
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        ),
    ),
)
