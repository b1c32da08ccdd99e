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
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='MambaVisionBackbone',
        arch=dict(base='tiny', window_size=(8, 8, 64, 32)),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mambavision_tiny.in1k.safetensors')),
    decode_head=dict(in_channels=[80, 160, 320, 640], num_classes=150),
    auxiliary_head=dict(in_channels=320, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00005, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]

train_dataloader = dict(batch_size=1)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
