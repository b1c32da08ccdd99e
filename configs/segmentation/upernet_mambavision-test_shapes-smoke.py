# Smoke test of the UperNet MambaVision recipe on CPU: upernet_mambavision-t_16xb1-160k_ade20k-512x512.py with the
# 0.3M-parameter `test_mambavision` backbone, narrow heads with BatchNorm instead of SyncBN, trained for 4 iterations of
# 2 images (4 training images, 2 for validation) on the coloured-shapes scenes of vssm.data.shapes at 128x128 (9
# classes: background and 8 shapes).
#
# The data set is generated on first use (PNG images and label maps, a few seconds) into the folder named by
# $VSSM_SHAPES_ROOT, or else into the shapes cache ($VSSM_DATA, default ~/.cache/vssm).
# Target: none. It checks that training, checkpointing, resuming and mIoU evaluation run.
#   python tools/mm_train.py configs/segmentation/upernet_mambavision-test_shapes-smoke.py
_base_ = ['./upernet_mambavision-t_16xb1-160k_ade20k-512x512.py']

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
    backbone=dict(arch=dict(base='test', window_size=(2, 2, 16, 8)), drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(in_channels=[16, 32, 48, 64], channels=32, num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=48, channels=16, num_classes=len(classes), norm_cfg=norm_cfg))

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
optim_wrapper = dict(type='OptimWrapper')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
