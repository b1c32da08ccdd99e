# Mask R-CNN of the smoke configs: mmdet's Mask R-CNN R-50 FPN (the published recipes' detector) with narrow heads and
# few proposals, on the shapes data of shapes-smoke.py. The R-50 widths (FPN 256, fc 1024) and samplers (512 RoIs) cost
# seconds per iteration on a CPU, where RoIAlign's backward dominates. The smoke config adds the backbone and the
# neck's in_channels.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './shapes-smoke.py']

_ch = 32
model = dict(
    neck=dict(out_channels=_ch),
    rpn_head=dict(in_channels=_ch, feat_channels=_ch),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_ch),
        bbox_head=dict(in_channels=_ch, fc_out_channels=64, num_classes={{_base_.num_classes}}),
        mask_roi_extractor=dict(out_channels=_ch),
        mask_head=dict(in_channels=_ch, conv_out_channels=_ch, num_classes={{_base_.num_classes}})),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    # score_thr 0: a 4-iteration model scores below mmdet's 0.05, and COCO evaluation needs detections
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(score_thr=0.0, max_per_img=20)))
