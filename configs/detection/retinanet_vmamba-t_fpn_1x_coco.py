# RetinaNet with FPN, VMamba-T [s1l8] backbone, 1x schedule on COCO 2017.
#
# Target: none published. The official VMamba repository reports Mask R-CNN only; compare with a run of mmdet's own
# swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py on the same data. Recipe: mmdet's RetinaNet R-50 FPN with the backbone
# swapped as mmdet does for Swin-T (stages 1-3 into the FPN, P3-P7, the extra levels from the FPN input),
# drop_path_rate 0.2, and the VMamba Mask R-CNN optimizer (AdamW lr 1e-4 wd 0.05, no decay on norm weights; mmdet's
# Swin-T RetinaNet uses SGD lr 0.01), 16 images per iteration, 12 epochs with steps at 8 and 11.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='VMambaBackbone',
        arch='tiny',
        # only the stages the FPN reads: an output without a consumer would leave its norm without gradient
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vmamba_tiny.in1k.safetensors')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, num_outs=5))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
