# Smoke test of the UperNet Vim recipe on CPU: the segmentor of upernet_vim-t_4xb8-60k_ade20k-512x512.py with the
# 0.05M-parameter `test_vim` backbone and the narrow BatchNorm heads of the base upernet_shapes-smoke.py, trained with
# the recipe's AdamW for 4 iterations of 2 images on the coloured-shapes scenes of vssm.data.shapes at 128x128 (9
# classes: background and 8 shapes; the base says where the data set is generated).
# Target: none. It checks that training, checkpointing, resuming and mIoU evaluation run.
#   python tools/mm_train.py configs/segmentation/upernet_vim-test_shapes-smoke.py
_base_ = ['./_base_/upernet_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='VimBackbone', arch='test', out_indices=(0, 1, 2, 3), drop_path_rate=0.0,
                  init_cfg=None),
    decode_head=dict(in_channels=[32, 32, 32, 32]),
    auxiliary_head=dict(in_channels=32))
# the recipe's optimizer: AdamW lr 1e-4 wd 0.05 without decay on norms, position embedding and class token
optim_wrapper = dict(
    optimizer=dict(lr=0.0001, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
