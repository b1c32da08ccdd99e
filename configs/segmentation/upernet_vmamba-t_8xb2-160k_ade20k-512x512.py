# UperNet, VMamba-T [s1l8] backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official VMamba README, ADE20K val): 47.9 mIoU single-scale, 48.8 multi-scale (62M params, 949G FLOPs).
# Recipe of the official segmentation/configs/vssm1/upernet_vssm_4xb4-160k_ade20k-512x512_tiny.py, i.e. mmseg's
# Swin-T UperNet with the backbone swapped: drop_path_rate 0.2, AdamW lr 6e-5 wd 0.01 (no decay on norm weights),
# 1500 linear warm-up iterations then poly decay (power 1) to 0, 16 images per iteration (8 GPUs x 2), 160k
# iterations, crops of 512x512, SyncBN in the heads.
#
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:vmamba_tiny.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = ['./_base_/upernet_adamw-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='VMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_tiny.in1k')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
