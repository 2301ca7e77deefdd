"""MMSelfSup tutorial: what accumulate_64x4.py is equivalent to, 256 samples per GPU and an update every iteration."""
data = dict(samples_per_gpu=256)
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(type="OptimizerHook")
