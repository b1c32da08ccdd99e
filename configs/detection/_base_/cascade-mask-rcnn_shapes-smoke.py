# Cascade Mask R-CNN of the smoke configs: mmdet's Cascade Mask R-CNN R-50 FPN (the MambaVision and Vim recipes'
# detector) with narrow heads (three Shared4Conv1FCBBoxHead with the cascade's box-delta stds) and few proposals, on the
# shapes data of shapes-smoke.py: the R-50 widths cost seconds per iteration on a CPU. The smoke config adds the
# backbone, the neck's in_channels and what its recipe changes in the detector.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py', './shapes-smoke.py']

_ch = 32
model = dict(
    neck=dict(out_channels=_ch),
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
                num_classes={{_base_.num_classes}},
                norm_cfg=dict(type='BN', requires_grad=True),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[s, s, 2 * s, 2 * s]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)) for s in (0.1, 0.05, 0.033)
        ],
        mask_roi_extractor=dict(out_channels=_ch),
        mask_head=dict(in_channels=_ch, conv_out_channels=_ch, num_classes={{_base_.num_classes}})),
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
