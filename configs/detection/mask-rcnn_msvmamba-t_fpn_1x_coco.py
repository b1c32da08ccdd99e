# Mask R-CNN with FPN, MSVMamba-T backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target (official MSVMamba README, COCO val2017): 46.9 box AP / 42.2 mask AP (53M params, 252G FLOPs).
# Recipe of the official detection/configs/ms_vssm/mask_rcnn_ms_vssm_fpn_coco_tiny.py: mmdet's Swin-T Mask R-CNN 1x
# with the backbone swapped (drop_path_rate 0.2 from it), AdamW lr 1e-4 wd 0.05 (no decay on norm weights), 16 images
# per iteration (8 GPUs x 2), 1333x800, 12 epochs with steps at 8 and 11.
#
# Backbone weights: ImageNet-1k MSVMamba-T, converted once from the official release
# (https://drive.google.com/drive/folders/1ddNWk89ohcxxMuVEaJ2Y5A6xeBKgA7lU, vssm_tiny_ms_e300.pth) with
#   python tools/convert_checkpoint.py --model msvmamba_tiny --allow-pickle vssm_tiny_ms_e300.pth \
#       checkpoints/msvmamba_tiny.in1k.safetensors
_base_ = [
    './_base_/mask-rcnn_msvmamba-t_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
