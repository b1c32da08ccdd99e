# UperNet, MSVMamba-T backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official MSVMamba README, ADE20K val): 47.8 mIoU single-scale (65M params, 942G FLOPs).
# Recipe of the official segmentation/configs/ms_vssm/upernet_ms_vssm_4xb4-160k_ade20k-512x512_tiny.py, i.e. mmseg's
# Swin-T UperNet with the backbone swapped: drop_path_rate 0.2, AdamW lr 6e-5 wd 0.01 (no decay on norm weights),
# 1500 linear warm-up iterations then poly decay (power 1) to 0, 16 images per iteration (8 GPUs x 2), 160k
# iterations, crops of 512x512, SyncBN in the heads.
#
# Backbone weights: see configs/detection/mask-rcnn_msvmamba-t_fpn_1x_coco.py.
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
        type='MSVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/msvmamba_tiny.in1k.safetensors')),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
