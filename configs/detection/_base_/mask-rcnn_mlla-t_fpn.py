# Model of the MLLA-T Mask R-CNN recipes (mask-rcnn_mlla-t_fpn_ms-crop-1x_coco.py and its 3x variant): mmdet's Mask
# R-CNN R-50 FPN with the backbone swapped, drop_path_rate 0.1 (the 3x recipe raises it), ImageNet-1k MLLA-T weights.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MLLABackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mlla_tiny.in1k')),
    neck=dict(in_channels=[64, 128, 256, 512]))
