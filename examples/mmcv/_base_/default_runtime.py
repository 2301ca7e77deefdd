"""A base config the clipping example inherits from: no clipping there."""
optimizer = dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
