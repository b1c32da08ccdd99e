# RetinaNet with FPN, VMamba-B [s2l15] backbone, 1x schedule on COCO 2017.
#
# Target: none published (the official VMamba repository reports Mask R-CNN only). Recipe: the VMamba-T RetinaNet
# config with VMamba-B and its detection drop_path_rate 0.6.
_base_ = ['./retinanet_vmamba-t_fpn_1x_coco.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_base.in1k')),
    neck=dict(in_channels=[256, 512, 1024]))
