# UperNet, VMamba-S [s2l15] backbone, 160k iterations on ADE20K at 512x512.
#
# Target (official VMamba README, ADE20K val): 50.6 mIoU single-scale, 51.2 multi-scale (82M params, 1028G FLOPs).
# Recipe: the VMamba-T config with VMamba-S and drop_path_rate 0.3 (official
# upernet_vssm_4xb4-160k_ade20k-512x512_small.py).
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:vmamba_small.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = ['./upernet_vmamba-t_8xb2-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='timm:vmamba_small.in1k')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
