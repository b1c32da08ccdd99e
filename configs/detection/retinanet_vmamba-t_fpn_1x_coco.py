# RetinaNet with FPN, VMamba-T [s1l8] backbone, 1x schedule on COCO 2017.
#
# Target: none published. The official VMamba repository reports Mask R-CNN only; compare with a run of mmdet's own
# swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py on the same data. Recipe: mmdet's RetinaNet R-50 FPN with the backbone
# swapped as mmdet does for Swin-T (stages 1-3 into the FPN, P3-P7, the extra levels from the FPN input),
# drop_path_rate 0.2, and the VMamba Mask R-CNN optimizer (AdamW lr 1e-4 wd 0.05, no decay on norm weights; mmdet's
# Swin-T RetinaNet uses SGD lr 0.01), 16 images per iteration, 12 epochs with steps at 8 and 11.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='VMambaBackbone',
        arch='tiny',
        # only the stages the FPN reads: an output without a consumer would leave its norm without gradient
        out_indices=(1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_tiny.in1k')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, num_outs=5))
