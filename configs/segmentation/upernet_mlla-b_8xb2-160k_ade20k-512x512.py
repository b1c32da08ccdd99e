# UperNet, MLLA-B backbone, 160k iterations on ADE20K at 512x512 (MLLA reports segmentation for its base model only).
#
# Target (official MLLA downstream/segmentation README, ADE20K val): 51.9 mIoU single-scale, 52.5 multi-scale (128M
# params, 1183G FLOPs).
# Recipe of the official downstream/segmentation/configs/mlla/mlla_b_upernet.py, i.e. mmseg's Swin UperNet with the
# backbone swapped: drop_path_rate 0.5, AdamW lr 6e-5 wd 0.01 (no decay on norm weights), 1500 linear warm-up
# iterations then poly decay (power 1) to 0, 16 images per iteration (8 GPUs x 2), 160k iterations, crops of 512x512,
# SyncBN in the heads.
#
# Backbone weights: ImageNet-1k MLLA-B, converted once from the official release
# (https://cloud.tsinghua.edu.cn/f/91c85c5a1061496d8796/?dl=1, MLLA_B.pth) with
#   python tools/convert_checkpoint.py --model mlla_base MLLA_B.pth checkpoints/mlla_base.in1k.safetensors
_base_ = ['./_base_/upernet_adamw-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MLLABackbone',
        arch='base',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.5,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mlla_base.in1k.safetensors')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
