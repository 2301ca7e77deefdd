# ruff: noqa: F403, F405  (MMEngine configs take their base names by a star import)
from mmengine.config import read_base

with read_base():
    from .._base_.schedules.schedule_1x import *

from mmengine.optim.scheduler.lr_scheduler import LinearLR, MultiStepLR
from torch.optim import AdamW

max_epochs = 24
train_cfg.update(dict(max_epochs=max_epochs))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type=MultiStepLR, begin=0, end=max_epochs, by_epoch=True, milestones=[16, 22], gamma=0.1),
]
optim_wrapper.optimizer = dict(type=AdamW, lr=0.0001, weight_decay=0.05)
optim_wrapper.update(clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler[1]["gamma"] = 0.2
auto_scale_lr.enable = True
