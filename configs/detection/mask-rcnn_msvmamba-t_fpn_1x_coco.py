# Mask R-CNN with FPN, MSVMamba-T backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official MSVMamba README, COCO val2017): 46.9 box AP / 42.2 mask AP (53M params, 252G FLOPs).
# Recipe of the official detection/configs/ms_vssm/mask_rcnn_ms_vssm_fpn_coco_tiny.py: mmdet's Swin-T Mask R-CNN 1x
# with the backbone swapped (drop_path_rate 0.2 from it), AdamW lr 1e-4 wd 0.05 (no decay on norm weights), 16 images
# per iteration (8 GPUs x 2), 1333x800, 12 epochs with steps at 8 and 11.
#
# Backbone weights: the official ImageNet-1k release by name,
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = [
    './_base_/mask-rcnn_msvmamba-t_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
