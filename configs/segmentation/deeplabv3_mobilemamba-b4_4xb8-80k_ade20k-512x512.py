# DeepLabv3, MobileMamba-B4 backbone (B1's network with the weights trained at 512), 80k iterations on ADE20K at
# 512x512.
#
# Target (official MobileMamba README, ADE20K val): 36.6 mIoU single-scale (aAcc 76.3, mAcc 47.1; 23.4M params,
# 4.7G FLOPs).
# Recipe of the official downstream/seg/configs/deeplabv3/deeplabv3_mobilemamba_b4-80k_ade20k-512x512.py:
# mmseg's DeepLabv3 R-50-D8 with the backbone swapped (drop_path_rate 0.03),
# AdamW lr 1.2e-4 wd 0.05 (no decay on norm weights), gradient clipping at 0.1, 500 linear warm-up iterations,
# constant to 40k then cosine to 0 at 80k, 32 images per iteration (4 GPUs x 8), crops of 512x512.
#
# How the stages meet the heads: the ASPPHead reads the last stage (448 channels, stride 64), the auxiliary FCN
# head the second (376 channels, stride 32); the segmentor upsamples the logits to the image.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

crop_size = (512, 512)
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
    decode_head=dict(in_channels=448, in_index=2, channels=256, num_classes=150),
    auxiliary_head=dict(in_channels=376, in_index=1, num_classes=150))

max_iters = 80000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', begin=max_iters // 2, T_max=max_iters // 2, end=max_iters, by_epoch=False,
         eta_min=0),
]
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00012, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=0.1, norm_type=2))
train_dataloader = dict(batch_size=8, num_workers=8)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
