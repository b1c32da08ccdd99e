# Smoke test of the RetinaNet EfficientVMamba recipe on CPU: the detector of retinanet_efficient-vmamba-t_fpn_1x_coco.py
# with the 0.09M-parameter `test_efficient_vmamba` backbone (stages 1-3 into the FPN, as the EfficientVMamba-T config)
# and narrow heads, trained with the recipe's AdamW for 2 epochs of 2 iterations (4 images, batch 2) on the
# coloured-shapes scenes of vssm.data.shapes at 128x128 (the base shapes-smoke.py, which says where the data set is
# generated), boxes only.
# Target: none. It checks that training, checkpointing, resuming and COCO evaluation run.
#   python tools/mm_train.py configs/detection/retinanet_efficient-vmamba-test_fpn_shapes-smoke.py
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', './_base_/shapes-smoke.py']

_ch = 32  # narrow heads: the R-50 widths cost seconds per iteration on a CPU
model = dict(
    backbone=dict(_delete_=True, type='EfficientVMambaBackbone', arch='test', out_indices=(1, 2, 3),
                  drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[24, 32, 32], out_channels=_ch, start_level=0, num_outs=5),
    bbox_head=dict(in_channels=_ch, feat_channels=_ch, stacked_convs=2, num_classes={{_base_.num_classes}}),
    # score_thr 0: a 4-iteration model scores below mmdet's 0.05, and COCO evaluation needs detections
    test_cfg=dict(nms_pre=200, score_thr=0.0, max_per_img=20))

# boxes only: the shared pipelines without loading the masks
train_pipeline = [dict(t, with_mask=False) if t.type == 'LoadAnnotations' else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, with_mask=False) if t.type == 'LoadAnnotations' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
# the recipe's optimizer: AdamW lr 1e-4 wd 1e-4
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001))
