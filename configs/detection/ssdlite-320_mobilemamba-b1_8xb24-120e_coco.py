# SSDLite at 320x320, MobileMamba-B1 backbone, 120 epochs on COCO 2017.
#
# Target (official MobileMamba README, COCO val2017): 24.0 box AP (18.0M params, 1.7G FLOPs).
# Recipe of the official downstream/det/configs/ssd/ssdlite_mobilemamba_b1_8gpu_2lr_coco.py: mmdet's SSDLite
# MobileNetV2 config with the backbone swapped (ImageNet-1k B1 weights, drop_path_rate 0.03, norm_eval) and the
# optimiser replaced: AdamW lr 2.4e-3 wd 0.05 (no decay on norm weights), gradient clipping at 0.1, 500 linear warm-up
# iterations from 1e-5, constant to epoch 60 then cosine to 0 at epoch 120; 192 images per iteration (8 GPUs x 24),
# the training set repeated 5 times per epoch, Expand / MinIoURandomCrop / PhotoMetricDistortion at 320x320.
#
# How the stages meet the neck: the first two stages (strides 16 and 32; 200 and 376 channels: the official
# out_indices (1, 2), which count the stem as 0) feed mmdet's SSDNeck, whose four depthwise stride-2 extra layers
# make 512 / 256 / 256 / 128-channel maps; with SSDLite's anchor strides 16 / 32 / 64 / 107 / 160 / 320 these are
# 20x20 ... 1x1 maps at 320. The third stage is not used, so the adapter does not build it: our detector has 9.57M
# parameters; the official backbone also builds the unused stage 3 (8.45M), which makes its 18.0M (18.02M).
#
# Backbone weights: the official ImageNet-1k B1 release by name; it is a Google Drive file, so without it in the cache
# the error names the page to download it from and the cache path to put it at (vssm.hub).
_base_ = ['mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py']
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileMambaBackbone',
        arch='b1',
        out_indices=(0, 1),
        drop_path_rate=0.03,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mobilemamba_b1.in1k')),
    neck=dict(in_channels=(200, 376), out_channels=(200, 376, 512, 256, 256, 128)),
    bbox_head=dict(type='FixedSSDHead', in_channels=(200, 376, 512, 256, 256, 128)))

max_epochs = 120
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_epochs // 2, T_max=max_epochs // 2, end=max_epochs, by_epoch=True,
         eta_min=0),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0024, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
train_dataloader = dict(batch_size=24)
auto_scale_lr = dict(base_batch_size=192)
