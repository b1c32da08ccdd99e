# Mask R-CNN with FPN, MLLA-T backbone, 3x schedule (36 epochs) with multi-scale + crop training, on COCO 2017.
#
# Target (official MLLA downstream/detection README, COCO val2017): 48.8 box AP / 43.8 mask AP.
# Recipe of the official downstream/detection/configs/mlla/mlla_t_mrcnn_3x.py: the 1x recipe (same augmentation)
# with drop_path_rate 0.3 and 36 epochs with steps at 27 and 33.
_base_ = [
    './_base_/mask-rcnn_mlla-t_fpn.py',
    './_base_/coco-instance_ms-crop.py',
    './_base_/schedule_adamw-3x.py',
    'mmdet::_base_/default_runtime.py',
]

model = dict(backbone=dict(drop_path_rate=0.3))
