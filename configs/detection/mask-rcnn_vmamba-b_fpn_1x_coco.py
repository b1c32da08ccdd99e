# Mask R-CNN with FPN, VMamba-B [s2l15] backbone, 1x schedule on COCO 2017.
#
# Target (official VMamba README, COCO val2017): 49.2 box AP / 44.1 mask AP (108M params, 485G FLOPs).
# Recipe: as the VMamba-T 1x config, with drop_path_rate 0.6 (official mask_rcnn_vssm_fpn_coco_base.py).
# Backbone weights: the official VMamba-B release (%23v2cls/vssm_base_0229_ckpt_epoch_237.pth), converted with
#   python tools/convert_checkpoint.py --model vmamba_base --allow-pickle vssm_base_0229_ckpt_epoch_237.pth \
#       checkpoints/vmamba_base.in1k.safetensors
_base_ = ['./mask-rcnn_vmamba-t_fpn_1x_coco.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vmamba_base.in1k.safetensors')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
