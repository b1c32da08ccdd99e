# Mask R-CNN with FPN, VMamba-B [s2l15] backbone, 3x schedule with multi-scale + crop training.
#
# Target: none published. The official VMamba README reports no 3x result for VMamba-B (its 1x result is
# 49.2 box AP / 44.1 mask AP); this config applies the T / S 3x recipe with VMamba-B's drop_path_rate 0.6.
_base_ = ['./mask-rcnn_vmamba-t_fpn_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_base.in1k')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
