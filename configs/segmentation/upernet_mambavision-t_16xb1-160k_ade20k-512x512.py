# UperNet, MambaVision-T backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official MambaVision semantic_segmentation README, ADE20K val): 46.0 mIoU (55M params, 945G FLOPs).
# Recipe of the official semantic_segmentation/configs/mamba_vision/mamba_vision_160k_ade20k-512x512_tiny.py, i.e.
# mmseg's Swin UperNet with the backbone swapped: the windows of stages 3-4 enlarged to 64 and 32 (one window per
# map at 512x512: the 32x32 and 16x16 maps are zero-padded to the window and cropped back), drop_path_rate 0.3,
# AdamW lr 5e-5 wd 0.01 (no decay on norm weights), 1500 linear warm-up iterations then poly decay (power 1) to 0,
# 16 images per iteration (16 GPUs x 1), 160k iterations, crops of 512x512, SyncBN in the heads. The official run
# uses mixed precision: add --amp to tools/mm_train.py.
#
# Backbone weights: see configs/detection/cascade-mask-rcnn_mambavision-t_fpn_ms-crop-3x_coco.py.
_base_ = ['./_base_/upernet_adamw-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MambaVisionBackbone',
        arch=dict(base='tiny', window_size=(8, 8, 64, 32)),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mambavision_tiny.in1k')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(optimizer=dict(lr=0.00005))
train_dataloader = dict(batch_size=1)  # x 16 GPUs
