# UperNet, EfficientVMamba-T backbone, 160k iterations on ADE20K at 512x512.
#
# Target (EfficientVMamba paper, ADE20K val, UperNet 160k): 38.9 mIoU single-scale.
# Recipe: the VMamba UperNet recipe the EfficientVMamba code base builds on (mmseg's Swin-T UperNet with the backbone
# swapped): drop_path_rate 0.1, AdamW lr 6e-5 wd 0.01 (no decay on norm weights), 1500 linear warm-up iterations then
# poly decay (power 1) to 0, 16 images per iteration (8 GPUs x 2), 160k iterations, crops of 512x512, SyncBN in the
# heads.
#
# Backbone weights: see configs/detection/retinanet_efficient-vmamba-t_fpn_1x_coco.py.
_base_ = ['./_base_/upernet_adamw-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='timm:efficient_vmamba_tiny.in1k')),
    decode_head=dict(in_channels=[48, 96, 192, 384]),
    auxiliary_head=dict(in_channels=192))
