"""MMSelfSup tutorial: 64 samples per GPU, an update every 4 iterations (like 256 per GPU)."""
data = dict(samples_per_gpu=64)
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(type="DistOptimizerHook", update_interval=4)
