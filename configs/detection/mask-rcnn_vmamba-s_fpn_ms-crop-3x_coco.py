# Mask R-CNN with FPN, VMamba-S [s2l15] backbone, 3x schedule with multi-scale + crop training.
#
# Target (official VMamba README, COCO val2017): 49.9 box AP / 44.2 mask AP.
# Recipe: the VMamba-T 3x config with the VMamba-S backbone, drop_path_rate 0.3 (official
# mask_rcnn_vssm_fpn_coco_small_ms_3x.py).
_base_ = ['./mask-rcnn_vmamba-t_fpn_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_small.in1k')),
    neck=dict(in_channels=[96, 192, 384, 768]))
