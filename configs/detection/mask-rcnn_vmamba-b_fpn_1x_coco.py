# Mask R-CNN with FPN, VMamba-B [s2l15] backbone, 1x schedule on COCO 2017.
#
# Target (official VMamba README, COCO val2017): 49.2 box AP / 44.1 mask AP (108M params, 485G FLOPs).
# Recipe: as the VMamba-T 1x config, with drop_path_rate 0.6 (official mask_rcnn_vssm_fpn_coco_base.py).
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:vmamba_base.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = ['./mask-rcnn_vmamba-t_fpn_1x_coco.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_base.in1k')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
