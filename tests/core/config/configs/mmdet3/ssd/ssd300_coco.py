_base_ = ['../_base_/schedules/schedule_2x.py']

max_epochs = 120
train_cfg = dict(max_epochs=max_epochs)
# the base's values, read and changed before this file's own are merged into them
_base_.param_scheduler[1].milestones = [int(max_epochs * r) for r in (0.75, 0.9)]
_base_.param_scheduler[1]['end'] = max_epochs
del _base_.auto_scale_lr
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(lr=_base_.optim_wrapper.optimizer.lr * 1.5, weight_decay=5e-4))
custom_hooks = [dict(type='NumClassCheckHook'), dict(type='CheckInvalidLossHook', interval=50, priority='VERY_LOW')]
