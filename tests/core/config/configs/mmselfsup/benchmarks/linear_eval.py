_base_ = "../selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"

model = dict(backbone={{_base_.model.backbone}}, head=dict(type="ClsHead", num_classes=1000), _delete_=True)
num_stages = 4
frozen = [f"layer{i}" for i in range(1, num_stages + 1) if i < num_stages]
augments = ["RandomResizedCrop", "RandomHorizontalFlip", "GaussianBlur"]
train_pipeline = [dict(type=t) for t in augments if t != "GaussianBlur"]
train_pipeline[0]["size"] = 224
img_norm_cfg = {{_base_.img_norm_cfg}}
train_pipeline += [dict(type="ToTensor"), dict(type="Normalize", **dict(mean=[0.485, 0.456, 0.406]))]
data = dict(samples_per_gpu=sum([64, 64, 128]), train=dict(pipelines=[train_pipeline]))
optimizer = dict(type="SGD", lr=30.0, momentum=0.9, weight_decay=0.0, _delete_=True)
lr_config = dict(policy="step", step=[60, 80], _delete_=True)
runner = dict(type="EpochBasedRunner", max_epochs=100)
