# Model of the MSVMamba-T Mask R-CNN recipes (mask-rcnn_msvmamba-t_fpn_1x_coco.py and its ms-crop 3x variant): mmdet's
# Mask R-CNN R-50 FPN with the backbone swapped, drop_path_rate 0.2, ImageNet-1k MSVMamba-T weights.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MSVMambaBackbone',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='timm:msvmamba_tiny.in1k')),
    neck=dict(in_channels=[96, 192, 384, 768]))
