# Mask R-CNN with FPN, VMamba-T [s1l8] backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official VMamba README, COCO val2017): 47.3 box AP / 42.7 mask AP (50M params, 271G FLOPs).
# Recipe of the official detection/configs/vssm1/mask_rcnn_vssm_fpn_coco_tiny.py: mmdet's Mask R-CNN R-50 FPN with
# the backbone swapped, drop_path_rate 0.2, AdamW lr 1e-4 wd 0.05 (no decay on norm weights), no layer decay,
# 16 images per iteration (8 GPUs x 2), 1333x800, 12 epochs with steps at 8 and 11, 1000 linear warm-up iterations.
#
# Backbone weights: the official ImageNet-1k release by name,
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = [
    './_base_/mask-rcnn_vmamba-t_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
