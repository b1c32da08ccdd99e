# Mask R-CNN with FPN, VMamba-T [s1l8] backbone, 3x schedule (36 epochs) with multi-scale + crop training.
#
# Target (official VMamba README, COCO val2017): 48.8 box AP / 43.7 mask AP.
# Recipe of the official mask_rcnn_vssm_fpn_coco_tiny_ms_3x.py: the 1x recipe with the DETR-style augmentation
# (random shorter side 480..800, or resize to 400..600, random crop 384..600 and resize again), 36 epochs with steps
# at 27 and 33.
_base_ = [
    './_base_/mask-rcnn_vmamba-t_fpn.py',
    './_base_/coco-instance_ms-crop.py',
    './_base_/schedule_adamw-3x.py',
    'mmdet::_base_/default_runtime.py',
]
