# Mask R-CNN with FPN, MLLA-T backbone, 1x schedule (12 epochs) with multi-scale + crop training, on COCO 2017.
#
# Target (official MLLA downstream/detection README, COCO val2017): 46.8 box AP / 42.1 mask AP (44M params, 255G
# FLOPs).
# Recipe of the official downstream/detection/configs/mlla/mlla_t_mrcnn_1x.py: mmdet's Mask R-CNN with the Swin FPN
# setup, drop_path_rate 0.1, the DETR-style multi-scale + crop augmentation already in the 1x schedule, AdamW lr 1e-4
# wd 0.05 (no decay on norm weights), 16 images per iteration (8 GPUs x 2), 12 epochs with steps at 8 and 11.
#
# Backbone weights: the official ImageNet-1k release by name,
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = [
    './_base_/mask-rcnn_mlla-t_fpn.py',
    './_base_/coco-instance_ms-crop.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=2)  # x 8 GPUs
