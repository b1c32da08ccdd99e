# Model of the VMamba-T Mask R-CNN recipes (mask-rcnn_vmamba-t_fpn_1x_coco.py and its ms-crop 3x variant): mmdet's
# Mask R-CNN R-50 FPN with the backbone swapped, drop_path_rate 0.2, ImageNet-1k VMamba-T weights.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

pretrained = 'timm:vmamba_tiny.in1k'
model = dict(
    backbone=dict(
        _delete_=True,
        type='VMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
