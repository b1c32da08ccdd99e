# Smoke test of the Mask R-CNN MobileMamba recipe on CPU: the detector of
# mask-rcnn_mobilemamba-b1_upsample-fpn_1x_coco.py (UpsampleFPN: levels at strides 4 / 8 grown from the stride-16
# stage) with the 0.4M-parameter `test_mobilemamba` backbone and the narrow heads of the base
# mask-rcnn_shapes-smoke.py, trained with the recipe's AdamW for 2 epochs of 2 iterations (4 images, batch 2) on the
# coloured-shapes scenes of vssm.data.shapes at 128x128 (the base shapes-smoke.py, which says where the data set is
# generated).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/mask-rcnn_mobilemamba-test_upsample-fpn_shapes-smoke.py
_base_ = ['./_base_/mask-rcnn_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='MobileMambaBackbone', arch='test', out_indices=(0, 1, 2), drop_path_rate=0.0,
                  norm_eval=True, init_cfg=None),
    neck=dict(_delete_=True, type='UpsampleFPN', in_channels=[48, 64, 80], out_channels=32, num_outs=5,
              num_upsample=2))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2))
