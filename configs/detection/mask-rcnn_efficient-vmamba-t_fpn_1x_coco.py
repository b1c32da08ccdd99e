# Mask R-CNN with FPN, EfficientVMamba-T backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target: none checked here (the paper's Mask R-CNN table could not be verified for this config; compare with a run
# of mmdet's swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py on the same data).
# Recipe of the official detection/configs/efficient/mask_rcnn_vssm_fpn_coco_efficient_2242_48.py: mmdet's Swin-T
# Mask R-CNN 1x with the backbone swapped (drop_path_rate 0.2 from it), AdamW lr 1e-4 wd 0.05 (no decay on norm
# weights), 16 images per iteration (the official run: 4 GPUs x 4, mixed precision: add --amp), 12 epochs with
# steps at 8 and 11.
#
# Backbone weights: see retinanet_efficient-vmamba-t_fpn_1x_coco.py.
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
        type='EfficientVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/efficient_vmamba_tiny.in1k.safetensors')),
    neck=dict(in_channels=[48, 96, 192, 384]))

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
