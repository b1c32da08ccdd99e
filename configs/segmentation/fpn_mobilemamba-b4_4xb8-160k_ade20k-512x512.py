# Semantic FPN, MobileMamba-B4 backbone (B1's network with the weights trained at 512), 160k iterations on ADE20K at
# 512x512.
#
# Target (official MobileMamba README, ADE20K val): 42.5 mIoU single-scale (aAcc 79.9, mAcc 53.7; 19.8M params, 5.6G
# FLOPs).
# Recipe of the official downstream/seg/configs/sem_fpn/fpn_mobilemamba_b4-160k_ade20k-512x512.py: mmseg's Semantic FPN
# (FPN + FPNHead, SyncBN) with the backbone swapped (drop_path_rate 0.03), AdamW lr 1.2e-4 wd 0.05 (no decay on norm
# weights, 10x lr in the head), 1500 linear warm-up iterations, constant to 80k then cosine to 0 at 160k, 32 images per
# iteration (4 GPUs x 8), crops of 512x512.
#
# How the stages meet the neck: the three stages (strides 16 / 32 / 64) all enter the FPN (num_outs 3), and FPNHead
# fuses them at stride 16 (feature_strides 16 / 32 / 64); the segmentor upsamples its logits to the image. No out
# norms: the official backbone has none.
#
# Backbone weights: the official B4 release (timm tag mobilemamba_b1.in1k_r512), a Google Drive file: see
# configs/detection/mask-rcnn_mobilemamba-b1_upsample-fpn_1x_coco.py.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='MobileMambaBackbone',
        arch='b1',
        out_indices=(0, 1, 2),
        drop_path_rate=0.03,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mobilemamba_b1.in1k_r512')),
    neck=dict(in_channels=[200, 376, 448], out_channels=256, num_outs=3),
    decode_head=dict(in_channels=[256, 256, 256], in_index=[0, 1, 2], feature_strides=[16, 32, 64], channels=128,
                     dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False))

max_iters = 160000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='CosineAnnealingLR', begin=max_iters // 2, T_max=max_iters // 2, end=max_iters, by_epoch=False,
         eta_min=0),
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00012, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0), 'head': dict(lr_mult=10.0)}))
train_dataloader = dict(batch_size=8, num_workers=8)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
