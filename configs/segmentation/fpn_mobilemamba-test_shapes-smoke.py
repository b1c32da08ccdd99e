# Smoke test of the Semantic FPN MobileMamba recipe on CPU: the segmentor of
# fpn_mobilemamba-b4_4xb8-160k_ade20k-512x512.py (FPN over the stride-16 / 32 / 64 stages, FPNHead at stride 16) with
# the 0.4M-parameter `test_mobilemamba` backbone and narrow BatchNorm heads, trained with the recipe's AdamW for 4
# iterations of 2 images on the coloured-shapes scenes of vssm.data.shapes at 128x128 (the data, schedule and runtime
# of the base upernet_shapes-smoke.py, which says where the data set is generated; its UperNet heads replaced).
# Target: none. It checks that training, checkpointing, resuming and mIoU evaluation run.
#   python tools/mm_train.py configs/segmentation/fpn_mobilemamba-test_shapes-smoke.py
_base_ = ['./_base_/upernet_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='MobileMambaBackbone', arch='test', out_indices=(0, 1, 2), drop_path_rate=0.0,
                  init_cfg=None),
    neck=dict(type='FPN', in_channels=[48, 64, 80], out_channels=32, num_outs=3),
    decode_head=dict(_delete_=True, type='FPNHead', in_channels=[32, 32, 32], in_index=[0, 1, 2],
                     feature_strides=[16, 32, 64], channels=16, dropout_ratio=0.1,
                     num_classes={{_base_.model.decode_head.num_classes}}, norm_cfg=dict(type='BN', requires_grad=True),
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00012, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0), 'head': dict(lr_mult=10.0)}))
