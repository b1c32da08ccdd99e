# RetinaNet with FPN, EfficientVMamba-T backbone, 1x schedule on COCO 2017.
#
# Target (EfficientVMamba paper, COCO val2017, RetinaNet 1x): 37.5 box AP (13M params).
# Recipe: mmdet's RetinaNet 1x as the paper's comparison with PVT (pvt/retinanet_pvt-t_fpn_1x_coco.py: AdamW lr 1e-4
# wd 1e-4), with the backbone's stages 1-3 into the FPN (P3-P7, the extra levels from the FPN input; stage 0 is not
# an output, so every out norm gets a gradient), 16 images per iteration, 12 epochs with steps at 8 and 11.
#
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:efficient_vmamba_tiny.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientVMambaBackbone',
        arch='tiny',
        out_indices=(1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='timm:efficient_vmamba_tiny.in1k')),
    neck=dict(in_channels=[96, 192, 384], start_level=0, num_outs=5))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
