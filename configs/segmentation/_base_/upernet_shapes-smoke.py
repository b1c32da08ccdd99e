# The UperNet of the segmentation smoke configs (*-test_shapes-smoke.py) with its data, schedule and runtime: the
# published recipes' UperNet (upernet_adamw-160k_ade20k-512x512.py) with narrow heads and BatchNorm instead of SyncBN,
# trained for 4 iterations of 2 images (4 training images, 2 for validation) on the coloured-shapes scenes of
# vssm.data.shapes at 128x128 (9 classes: background and 8 shapes), mIoU after the last iteration, a checkpoint every 2,
# single-process CPU runs (gloo). The smoke config adds the backbone and the heads' in_channels.
#
# The data set is generated on first use (PNG images and label maps, a few seconds) into the folder named by
# $VSSM_SHAPES_ROOT, or else into the shapes cache ($VSSM_DATA, default ~/.cache/vssm).
_base_ = ['./upernet_adamw-160k_ade20k-512x512.py']

import os  # noqa: E402

from vssm.data.shapes import SHAPES, prepare_scenes  # noqa: E402

data_root = str(prepare_scenes(os.environ.get('VSSM_SHAPES_ROOT') or None, img_size=128, num_train=4, num_val=2,
                               max_objects=3, seed=0)) + '/'
# label maps hold 0 for background and k for SHAPES[k - 1]: background stays a class (no reduce_zero_label)
classes = ('background', *SHAPES)
palette = [[(37 * i) % 256, (91 * i) % 256, (53 * i) % 256] for i in range(len(classes))]
metainfo = dict(classes=classes, palette=palette)

crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(channels=32, num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(channels=16, num_classes=len(classes), norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
_dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.png',
                seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(
    batch_size=2,  # BatchNorm in the heads needs more than one image
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/train', seg_map_path='masks/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/val', seg_map_path='masks/val'), pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=2, end=max_iters, by_epoch=False),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
