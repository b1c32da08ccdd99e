# Mask R-CNN with FPN, MSVMamba-T backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official MSVMamba README, COCO val2017): 46.9 box AP / 42.2 mask AP (53M params, 252G FLOPs).
# Recipe of the official detection/configs/ms_vssm/mask_rcnn_ms_vssm_fpn_coco_tiny.py: mmdet's Swin-T Mask R-CNN 1x
# with the backbone swapped (drop_path_rate 0.2 from it), AdamW lr 1e-4 wd 0.05 (no decay on norm weights), 16 images
# per iteration (8 GPUs x 2), 1333x800, 12 epochs with steps at 8 and 11.
#
# Backbone weights: ImageNet-1k MSVMamba-T, converted once from the official release
# (https://drive.google.com/drive/folders/1ddNWk89ohcxxMuVEaJ2Y5A6xeBKgA7lU, vssm_tiny_ms_e300.pth) with
#   python tools/convert_checkpoint.py --model msvmamba_tiny --allow-pickle vssm_tiny_ms_e300.pth \
#       checkpoints/msvmamba_tiny.in1k.safetensors
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
        type='MSVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/msvmamba_tiny.in1k.safetensors')),
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
