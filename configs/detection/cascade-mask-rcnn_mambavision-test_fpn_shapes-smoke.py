# Smoke test of the Cascade Mask R-CNN MambaVision recipe on CPU: cascade-mask-rcnn_mambavision-t_fpn_ms-crop-3x_coco.py
# with the 0.3M-parameter `test_mambavision` backbone (windows 16 and 8 in stages 3-4, larger than their 8x8 and 4x4
# maps: the padded path of the Cascade recipe) and narrow heads, trained for 2 epochs of 2 iterations (4 images, batch
# 2) on the coloured-shapes scenes of vssm.data.shapes at 128x128.
#
# The data set is generated on first use (COCO-format instances + PNG label maps, a few seconds) into the folder named
# by $VSSM_SHAPES_ROOT, or else into the shapes cache ($VSSM_DATA, default ~/.cache/vssm).
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/cascade-mask-rcnn_mambavision-test_fpn_shapes-smoke.py
_base_ = ['./cascade-mask-rcnn_mambavision-t_fpn_ms-crop-3x_coco.py']

import os  # noqa: E402

from vssm.data.shapes import SHAPES, prepare_scenes  # noqa: E402

data_root = str(prepare_scenes(os.environ.get('VSSM_SHAPES_ROOT') or None, img_size=128, num_train=4, num_val=2,
                               max_objects=3, seed=0)) + '/'
num_classes = len(SHAPES)
metainfo = dict(classes=SHAPES)

_ch = 32  # narrow heads: the R-50 widths cost seconds per iteration on a CPU
# the cascade's three box heads and stage samplers, narrow (Shared4Conv1FCBBoxHead)
model = dict(
    backbone=dict(arch=dict(base='test', window_size=(2, 2, 16, 8)), drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=_ch),
    rpn_head=dict(in_channels=_ch, feat_channels=_ch),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_ch),
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=_ch,
                conv_out_channels=_ch,
                fc_out_channels=64,
                roi_feat_size=7,
                num_classes=num_classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[s, s, 2 * s, 2 * s]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)) for s in (0.1, 0.05, 0.033)
        ],
        mask_roi_extractor=dict(out_channels=_ch),
        mask_head=dict(in_channels=_ch, conv_out_channels=_ch, num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=[
            dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                              match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    # score_thr 0: a 4-iteration model scores below mmdet's 0.05, and COCO evaluation needs detections
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(score_thr=0.0, max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[1], gamma=0.1),
]
optim_wrapper = dict(type='OptimWrapper')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
