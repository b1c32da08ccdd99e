# Mask R-CNN with FPN, MLLA-T backbone, 1x schedule (12 epochs) with multi-scale + crop training, on COCO 2017.
#
# Target (official MLLA downstream/detection README, COCO val2017): 46.8 box AP / 42.1 mask AP (44M params, 255G
# FLOPs).
# Recipe of the official downstream/detection/configs/mlla/mlla_t_mrcnn_1x.py: mmdet's Mask R-CNN with the Swin FPN
# setup, drop_path_rate 0.1, the DETR-style multi-scale + crop augmentation already in the 1x schedule, AdamW lr 1e-4
# wd 0.05 (no decay on norm weights), 16 images per iteration (8 GPUs x 2), 12 epochs with steps at 8 and 11.
#
# Backbone weights: ImageNet-1k MLLA-T, converted once from the official release
# (https://cloud.tsinghua.edu.cn/f/7a19712877cb4242889c/?dl=1, MLLA_T.pth) with
#   python tools/convert_checkpoint.py --model mlla_tiny MLLA_T.pth checkpoints/mlla_tiny.in1k.safetensors
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MLLABackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mlla_tiny.in1k.safetensors')),
    neck=dict(in_channels=[64, 128, 256, 512]))

_multi_scale = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333), (672, 1333),
                (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=_multi_scale, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=_multi_scale, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))  # x 8 GPUs

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
