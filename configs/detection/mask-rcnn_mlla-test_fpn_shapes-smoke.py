# Smoke test of the Mask R-CNN MLLA recipe on CPU: the detector of mask-rcnn_mlla-t_fpn_ms-crop-1x_coco.py with the
# 0.04M-parameter `test_mlla` backbone and the narrow heads of the base mask-rcnn_shapes-smoke.py, trained with the
# recipe's AdamW for 2 epochs of 2 iterations (4 images, batch 2) on the coloured-shapes scenes of vssm.data.shapes at
# 128x128 (the base shapes-smoke.py, which says where the data set is generated).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/mask-rcnn_mlla-test_fpn_shapes-smoke.py
_base_ = ['./_base_/mask-rcnn_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='MLLABackbone', arch='test', out_indices=(0, 1, 2, 3), drop_path_rate=0.0,
                  init_cfg=None),
    neck=dict(in_channels=[16, 24, 32, 32]))
