# UperNet, Vim-Ti backbone (four depths through a simple feature pyramid), 60k iterations on ADE20K at 512x512.
#
# Target (Vim paper, ADE20K val, UperNet): 41.0 mIoU (13M params).
# Recipe of the official seg/configs/vim/upernet/upernet_vim_tiny_24_512_slide_60k.py (BEiT's UperNet setup): the
# pyramid made from layers 6, 12, 18 and 24 (scales 4, 2, 1, 1/2), the position embedding made for 512x512, UperNet
# with 192 channels, AdamW lr 1e-4 wd 0.05, 1500 linear warm-up iterations then poly decay (power 1) to 0,
# 32 images per iteration (4 GPUs x 8), 60k iterations, crops of 512x512, sliding-window test (512, stride 341),
# SyncBN in the heads. Not reproduced: the layer-wise lr decay (0.92) and the published backbone's lack of a class
# token (this config keeps the classification model's middle class token, so its weights load unchanged).
#
# Backbone weights: see configs/detection/cascade-mask-rcnn_vim-t_simple-fpn_lsj-100e_coco.py.
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='VimBackbone',
        arch=dict(base='tiny', img_size=512),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vim_tiny.in1k')),
    decode_head=dict(in_channels=[192, 192, 192, 192], channels=192, num_classes=150),
    auxiliary_head=dict(in_channels=192, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

max_iters = 60000
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0), 'pos_embed': dict(decay_mult=0.0),
                                    'cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]

train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
