# UperNet, VMamba-B [s2l15] backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official VMamba README, ADE20K val): 51.0 mIoU single-scale, 51.6 multi-scale (122M params, 1170G FLOPs).
# Recipe: the VMamba-T config with VMamba-B and drop_path_rate 0.6 (official
# upernet_vssm_4xb4-160k_ade20k-512x512_base.py).
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:vmamba_base.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = ['./upernet_vmamba-t_8xb2-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_base.in1k')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
