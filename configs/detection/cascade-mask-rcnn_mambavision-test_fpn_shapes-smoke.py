# Smoke test of the Cascade Mask R-CNN MambaVision recipe on CPU: the detector of
# cascade-mask-rcnn_mambavision-t_fpn_ms-crop-3x_coco.py with the 0.3M-parameter `test_mambavision` backbone (windows 16
# and 8 in stages 3-4, larger than their 8x8 and 4x4 maps: the padded path of the Cascade recipe) and the narrow heads
# of the base cascade-mask-rcnn_shapes-smoke.py, trained with the recipe's AdamW for 2 epochs of 2 iterations (4 images,
# batch 2) on the coloured-shapes scenes of vssm.data.shapes at 128x128 (the base shapes-smoke.py, which says where the
# data set is generated).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/cascade-mask-rcnn_mambavision-test_fpn_shapes-smoke.py
_base_ = ['./_base_/cascade-mask-rcnn_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='MambaVisionBackbone', arch=dict(base='test', window_size=(2, 2, 16, 8)),
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64]))
