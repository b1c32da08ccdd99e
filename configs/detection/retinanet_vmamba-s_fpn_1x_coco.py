# RetinaNet with FPN, VMamba-S [s2l15] backbone, 1x schedule on COCO 2017.
#
# Target: none published (the official VMamba repository reports Mask R-CNN only). Recipe: the VMamba-T RetinaNet
# config with VMamba-S and its detection drop_path_rate 0.3.
_base_ = ['./retinanet_vmamba-t_fpn_1x_coco.py']

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_small.in1k')),
    neck=dict(in_channels=[192, 384, 768]))
