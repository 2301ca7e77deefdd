# checkpoint saving
checkpoint_config = dict(interval=10)
# yapf:disable
log_config = dict(
    interval=50,
    hooks=[
        dict(type='TextLoggerHook'),
        # dict(type='TensorboardLoggerHook')
    ])
# yapf:enable

# runtime settings
dist_params = dict(backend="nccl")
cudnn_benchmark = True
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
persistent_workers = True

# custom setting
opencv_num_threads = 0  # disable opencv multithreading to avoid system being overloaded
mp_start_method = "fork"  # set multi-process start method to `fork` to speed up the training
