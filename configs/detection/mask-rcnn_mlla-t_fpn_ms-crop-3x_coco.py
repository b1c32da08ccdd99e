# Mask R-CNN with FPN, MLLA-T backbone, 3x schedule (36 epochs) with multi-scale + crop training, on COCO 2017.
#
# Target (official MLLA downstream/detection README, COCO val2017): 48.8 box AP / 43.8 mask AP.
# Recipe of the official downstream/detection/configs/mlla/mlla_t_mrcnn_3x.py: the 1x recipe (same augmentation)
# with drop_path_rate 0.3 and 36 epochs with steps at 27 and 33.
_base_ = ['./mask-rcnn_mlla-t_fpn_ms-crop-1x_coco.py']

model = dict(backbone=dict(drop_path_rate=0.3))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
