# UperNet, VMamba-B [s2l15] backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official VMamba README, ADE20K val): 51.0 mIoU single-scale, 51.6 multi-scale (122M params, 1170G FLOPs).
# Recipe: the VMamba-T config with VMamba-B and drop_path_rate 0.6 (official
# upernet_vssm_4xb4-160k_ade20k-512x512_base.py).
# Backbone weights: the official VMamba-B release (%23v2cls/vssm_base_0229_ckpt_epoch_237.pth), converted with
#   python tools/convert_checkpoint.py --model vmamba_base --allow-pickle vssm_base_0229_ckpt_epoch_237.pth \
#       checkpoints/vmamba_base.in1k.safetensors
_base_ = ['./upernet_vmamba-t_8xb2-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/vmamba_base.in1k.safetensors')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
