# Mask R-CNN, MobileMamba-B1 backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official MobileMamba README, COCO val2017): 40.6 box AP / 37.4 mask AP (38.0M params, 178G FLOPs).
# Recipe of the official downstream/det/configs/mask_rcnn/mask-rcnn_mobilemamba_b1_fpn_1x_coco.py: mmdet's Mask R-CNN
# R-50 FPN with the backbone swapped (drop_path_rate 0.03, BatchNorm statistics frozen: norm_eval), its FPN replaced
# by EfficientViT's, AdamW lr 2e-4 wd 0.05 (no decay on norm weights), gradient clipping at 0.1, 500 linear warm-up
# iterations, constant to epoch 6 then cosine to 0 at epoch 12, 16 images per iteration (4 GPUs x 4), 1333x800.
#
# How the stages meet the neck: MobileMamba's three stages are at strides 16 / 32 / 64; UpsampleFPN (vssm.mm.necks,
# registered in mmdet) makes the FPN levels at 16 / 32 / 64 and grows the stride-8 and stride-4 levels out of the
# stride-16 lateral with two 2x2 transposed convs, so the RPN / RoI heads get mmdet's usual strides 4-64.
#
# Backbone weights: the official ImageNet-1k B1 release by name; it is a Google Drive file, so without it in the cache
# the error names the page to download it from and the cache path to put it at (vssm.hub).
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
        type='MobileMambaBackbone',
        arch='b1',
        out_indices=(0, 1, 2),
        drop_path_rate=0.03,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mobilemamba_b1.in1k')),
    neck=dict(_delete_=True, type='UpsampleFPN', in_channels=[200, 376, 448], out_channels=256, num_outs=5,
              num_upsample=2))

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
train_dataloader = dict(batch_size=4, num_workers=4)
