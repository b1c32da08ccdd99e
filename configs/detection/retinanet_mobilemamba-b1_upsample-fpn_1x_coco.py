# RetinaNet, MobileMamba-B1 backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official MobileMamba README, COCO val2017): 39.6 box AP (27.1M params, 151G FLOPs).
# Recipe of the official downstream/det/configs/retinanet/retinanet_mobilemamba_b1_fpn_1x_coco.py: mmdet's RetinaNet
# R-50 FPN with the backbone swapped (drop_path_rate 0.03, norm_eval) and the recipe of the Mask R-CNN config
# (mask-rcnn_mobilemamba-b1_upsample-fpn_1x_coco.py: AdamW lr 2e-4 wd 0.05, clipping 0.1, warm-up, then cosine from
# epoch 6), 16 images per iteration (8 GPUs x 2), 1333x800.
#
# How the stages meet the neck: UpsampleFPN makes the levels at strides 16 / 32 / 64 from the three stages, one
# stride-8 level with a transposed conv from the stride-16 lateral, and a stride-128 level with a stride-2 conv on
# the last stage's map: RetinaNet's strides 8-128.
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
        type='MobileMambaBackbone',
        arch='b1',
        out_indices=(0, 1, 2),
        drop_path_rate=0.03,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mobilemamba_b1.in1k')),
    neck=dict(_delete_=True, type='UpsampleFPN', in_channels=[200, 376, 448], out_channels=256, num_outs=5,
              num_upsample=1, add_extra_convs='on_input'))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_epochs // 2, T_max=max_epochs // 2, end=max_epochs, by_epoch=True,
         eta_min=0),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
train_dataloader = dict(batch_size=2, num_workers=2)
