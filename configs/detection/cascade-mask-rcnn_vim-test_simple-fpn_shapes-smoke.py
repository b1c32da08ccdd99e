# Smoke test of the Cascade Mask R-CNN Vim (ViTDet-style) recipe on CPU: the detector of
# cascade-mask-rcnn_vim-t_simple-fpn_lsj-100e_coco.py with the 0.08M-parameter `test_vim` backbone (its pyramid from the
# last layer, as the Vim-Ti config) and the narrow heads of the base cascade-mask-rcnn_shapes-smoke.py, trained with the
# recipe's AdamW for 2 epochs of 2 iterations (4 images, batch 2) on the coloured-shapes scenes of vssm.data.shapes at
# 128x128 (the base shapes-smoke.py, which says where the data set is generated).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/cascade-mask-rcnn_vim-test_simple-fpn_shapes-smoke.py
_base_ = ['./_base_/cascade-mask-rcnn_shapes-smoke.py']

# what the recipe changes in the detector: the backbone's position embedding made for 1024x1024, GroupNorm in the neck
# and the mask head, a 2-conv RPN head
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='VimBackbone', arch=dict(base='test', img_size=1024, pyramid_layers=(3, 3, 3, 3)),
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[32, 32, 32, 32], norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(mask_head=dict(norm_cfg=norm_cfg)))
# the recipe's optimizer: AdamW wd 0.1 without decay on norms, position embedding and class token
optim_wrapper = dict(
    optimizer=dict(weight_decay=0.1),
    paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0)}))
train_dataloader = dict(batch_sampler=None)  # the recipe's LSJ data does not group images by aspect ratio
