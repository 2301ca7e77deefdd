"""MMSelfSup tutorial: no weight decay on BatchNorm / GroupNorm parameters nor on any bias."""
optimizer = dict(
    type='SGD',
    lr=0.03,
    momentum=0.9,
    weight_decay=1e-4,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)':
        dict(weight_decay=0.),
        'bias': dict(weight_decay=0.)
    })
