# Data, schedule and runtime of the detection smoke configs (*-test_*shapes-smoke.py): the coloured-shapes scenes of
# vssm.data.shapes at 128x128 (4 training images, 2 for validation, COCO-format instances), batch 2, 2 epochs of 2
# iterations with validation (COCO box + mask AP) and a checkpoint after each, single-process CPU runs (gloo). The
# optimizer is the recipes' AdamW (schedule_adamw-1x.py); the model comes with the smoke config.
#
# The data set is generated on first use (COCO-format instances + PNG label maps, a few seconds) into the folder named
# by $VSSM_SHAPES_ROOT, or else into the shapes cache ($VSSM_DATA, default ~/.cache/vssm).
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py',
    './schedule_adamw-1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)

import os  # noqa: E402

from vssm.data.shapes import SHAPES, prepare_scenes  # noqa: E402

data_root = str(prepare_scenes(os.environ.get('VSSM_SHAPES_ROOT') or None, img_size=128, num_train=4, num_val=2,
                               max_objects=3, seed=0)) + '/'
num_classes = len(SHAPES)
metainfo = dict(classes=SHAPES)

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
_dataset = dict(type='CocoDataset', data_root=data_root, metainfo=metainfo)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, _delete_=True, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'), filter_cfg=dict(filter_empty_gt=True, min_size=8),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, _delete_=True, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='images/val/'), test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[1], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
