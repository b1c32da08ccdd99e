# Mask R-CNN with FPN, EfficientVMamba-T backbone, 1x schedule (12 epochs) on COCO 2017.
#
# Target: none checked here (the paper's Mask R-CNN table could not be verified for this config; compare with a run
# of mmdet's swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py on the same data).
# Recipe of the official detection/configs/efficient/mask_rcnn_vssm_fpn_coco_efficient_2242_48.py: mmdet's Swin-T
# Mask R-CNN 1x with the backbone swapped (drop_path_rate 0.2 from it), AdamW lr 1e-4 wd 0.05 (no decay on norm
# weights), 16 images per iteration (the official run: 4 GPUs x 4, mixed precision: add --amp), 12 epochs with
# steps at 8 and 11.
#
# Backbone weights: see retinanet_efficient-vmamba-t_fpn_1x_coco.py.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='timm:efficient_vmamba_tiny.in1k')),
    neck=dict(in_channels=[48, 96, 192, 384]))
