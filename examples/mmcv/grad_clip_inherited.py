"""MMSelfSup tutorial: the base sets grad_clip=None, so the new dict needs _delete_=True to replace it."""
_base_ = '_base_/default_runtime.py'
optimizer_config = dict(_delete_=True, grad_clip=dict(max_norm=35, norm_type=2))
