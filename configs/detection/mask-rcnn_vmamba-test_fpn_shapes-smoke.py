# Smoke test of the Mask R-CNN VMamba recipe on CPU: the detector of mask-rcnn_vmamba-t_fpn_1x_coco.py with the
# 0.03M-parameter `test_vmamba` backbone and the narrow heads of the base mask-rcnn_shapes-smoke.py, trained with the
# recipes' AdamW for 2 epochs of 2 iterations (4 images, batch 2) on the coloured-shapes scenes of vssm.data.shapes at
# 128x128 (the base shapes-smoke.py, which says where the data set is generated).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run; the numbers are near 0 after
# 4 iterations.
#   python tools/mm_train.py configs/detection/mask-rcnn_vmamba-test_fpn_shapes-smoke.py
_base_ = ['./_base_/mask-rcnn_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='VMambaBackbone', arch='test', out_indices=(0, 1, 2, 3), drop_path_rate=0.0,
                  init_cfg=None),
    neck=dict(in_channels=[8, 16, 24, 32]))
