# Smoke test of the SSDLite MobileMamba recipe on CPU: the detector of ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py
# (stages 1-2 at strides 16 / 32 into mmdet's depthwise SSDNeck, four extra levels, SSDHead with the SSDLite anchors)
# with the 0.4M-parameter `test_mobilemamba` backbone and narrow extra levels, trained with the recipe's AdamW and
# clipping for 2 epochs of 2 iterations (4 images, batch 2) on the coloured-shapes scenes of vssm.data.shapes at
# 128x128 (the base shapes-smoke.py, which says where the data set is generated), boxes only.
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/ssdlite_mobilemamba-test_shapes-smoke.py
_base_ = ['./_base_/shapes-smoke.py']

_norm = dict(type='BN', eps=0.001, momentum=0.03)
_levels = (48, 64, 64, 32, 32, 32)
model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(type='MobileMambaBackbone', arch='test', out_indices=(0, 1), drop_path_rate=0.0, norm_eval=True,
                  init_cfg=None),
    neck=dict(type='SSDNeck', in_channels=(48, 64), out_channels=_levels, level_strides=(2, 2, 2, 2),
              level_paddings=(1, 1, 1, 1), l2_norm_scale=None, use_depthwise=True, norm_cfg=_norm,
              act_cfg=dict(type='ReLU6')),
    bbox_head=dict(
        type='FixedSSDHead', in_channels=_levels, num_classes={{_base_.num_classes}}, use_depthwise=True,
        norm_cfg=_norm, act_cfg=dict(type='ReLU6'),
        anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False, strides=[16, 32, 64, 107, 160, 320],
                              ratios=[[2, 3]] * 6, min_sizes=[48, 100, 150, 202, 253, 304],
                              max_sizes=[100, 150, 202, 253, 304, 320]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[0.1, 0.1, 0.2, 0.2])),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.,
                                 ignore_iof_thr=-1, gt_max_assign_all=False),
                   sampler=dict(type='PseudoSampler'), smoothl1_beta=1., allowed_border=-1, pos_weight=-1,
                   neg_pos_ratio=3, debug=False),
    # score_thr 0: a 4-iteration model scores below SSD's 0.02, and COCO evaluation needs detections
    test_cfg=dict(nms_pre=200, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0, score_thr=0.0,
                  max_per_img=20))

# boxes only, resized to a square as SSD does
train_pipeline = [dict(t, with_mask=False) if t.type == 'LoadAnnotations' else
                  dict(t, keep_ratio=False) if t.type == 'Resize' else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, with_mask=False) if t.type == 'LoadAnnotations' else
                 dict(t, keep_ratio=False) if t.type == 'Resize' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
# the recipe's optimizer: AdamW lr 2.4e-3 wd 0.05, clipping at 0.1
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0024, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2))
