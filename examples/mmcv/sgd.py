"""MMSelfSup tutorial, "optimizer": any PyTorch optimizer by its class name; every other key is its argument."""
optimizer = dict(type='SGD', lr=0.0003, weight_decay=0.0001)
