"""MMSelfSup tutorial: clip the gradients' total 2-norm to 35 before each update."""
optimizer = dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
# norm_type: the p of the p-norm, 2 here.
