# Cascade Mask R-CNN with FPN, MambaVision-T backbone, 3x schedule (36 epochs) with multi-scale + crop training.
#
# Target (official MambaVision object_detection README, COCO val2017): 51.1 box AP / 44.3 mask AP (86M params,
# 740G FLOPs).
# Recipe of the official object_detection/configs/mamba_vision/cascade_mask_rcnn_mamba_vision_tiny_3x_coco.py:
# mmdet's Cascade Mask R-CNN R-50 FPN with the backbone swapped, the windows of stages 3-4 enlarged to 112 and 56
# (maps the window does not divide are zero-padded to it and cropped back), drop_path_rate 0.2, three 4conv1fc box
# heads with SyncBN and GIoU loss, the DETR-style multi-scale + crop augmentation, AdamW lr 1e-4 wd 0.05 (no decay on
# norm weights), 16 images per iteration (8 GPUs x 2), 36 epochs with steps at 27 and 33, 1000 linear warm-up
# iterations. The official run uses mixed precision: add --amp to tools/mm_train.py.
#
# Backbone weights: the official ImageNet-1k release by name (init_cfg checkpoint='timm:mambavision_tiny.in1k'),
# downloaded once into torch hub's / the Hub's cache and converted on load (vssm.hub); without network, the
# error names the file and the cache path to put it at.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    './_base_/coco-instance_ms-crop.py',
    './_base_/schedule_adamw-3x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

# one 4conv1fc head per cascade stage, with the box-delta stds of mmdet's cascade stages
_box_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
model = dict(
    backbone=dict(
        _delete_=True,
        type='MambaVisionBackbone',
        arch=dict(base='tiny', window_size=(8, 8, 112, 56)),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint='timm:mambavision_tiny.in1k')),
    neck=dict(in_channels=[80, 160, 320, 640]),
    roi_head=dict(bbox_head=[
        dict(
            type='ConvFCBBoxHead',
            num_shared_convs=4,
            num_shared_fcs=1,
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=dict(type='SyncBN', requires_grad=True),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0)) for stds in _box_stds
    ]))
