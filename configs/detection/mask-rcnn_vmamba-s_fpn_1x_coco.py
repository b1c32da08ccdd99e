# Mask R-CNN with FPN, VMamba-S [s2l15] backbone, 1x schedule on COCO 2017.
#
# Target (official VMamba README, COCO val2017): 48.7 box AP / 43.7 mask AP (70M params, 384G FLOPs).
# Recipe: as the VMamba-T 1x config, with drop_path_rate 0.3 (official mask_rcnn_vssm_fpn_coco_small.py).
# Backbone weights: the official VMamba-S release (%23v2cls/vssm_small_0229_ckpt_epoch_222.pth), converted with
#   python tools/convert_checkpoint.py --model vmamba_small --allow-pickle vssm_small_0229_ckpt_epoch_222.pth \
#       checkpoints/vmamba_small.in1k.safetensors
_base_ = ['./mask-rcnn_vmamba-t_fpn_1x_coco.py']

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vmamba_small.in1k.safetensors')),
    neck=dict(in_channels=[96, 192, 384, 768]))
