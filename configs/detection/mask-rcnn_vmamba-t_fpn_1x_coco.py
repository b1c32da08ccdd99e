# Mask R-CNN with FPN, VMamba-T [s1l8] backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official VMamba README, COCO val2017): 47.3 box AP / 42.7 mask AP (50M params, 271G FLOPs).
# Recipe of the official detection/configs/vssm1/mask_rcnn_vssm_fpn_coco_tiny.py: mmdet's Mask R-CNN R-50 FPN with
# the backbone swapped, drop_path_rate 0.2, AdamW lr 1e-4 wd 0.05 (no decay on norm weights), no layer decay,
# 16 images per iteration (8 GPUs x 2), 1333x800, 12 epochs with steps at 8 and 11, 1000 linear warm-up iterations.
#
# Backbone weights: ImageNet-1k VMamba-T, converted once from the official release
# (https://github.com/MzeroMiko/VMamba/releases/download/%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth) with
#   python tools/convert_checkpoint.py --model vmamba_tiny --allow-pickle vssm1_tiny_0230s_ckpt_epoch_264.pth \
#       checkpoints/vmamba_tiny.in1k.safetensors
# (or point `checkpoint` at the official file itself with allow_pickle=True, if you trust it).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

pretrained = 'checkpoints/vmamba_tiny.in1k.safetensors'
model = dict(
    backbone=dict(
        _delete_=True,
        type='VMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))

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
