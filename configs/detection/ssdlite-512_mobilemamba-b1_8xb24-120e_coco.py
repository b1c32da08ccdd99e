# SSDLite at 512x512, MobileMamba-B1 backbone, 120 epochs on COCO 2017.
#
# Target (official MobileMamba README, COCO val2017): 29.5 box AP (18.0M params, 4.4G FLOPs).
# Recipe of the official downstream/det/configs/ssd/ssdlite_mobilemamba_b1_8gpu_2lr_512_coco.py: the 320x320 config
# (ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py) with the images resized to 512x512 in training and testing and
# everything else unchanged, the anchors included (strides 16-320 and sizes 48-320 as at 320): the six maps are
# 32x32 ... 1x1.
_base_ = ['./ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py']

input_size = 512
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Expand', mean={{_base_.data_preprocessor.mean}}, to_rgb={{_base_.data_preprocessor.bgr_to_rgb}},
         ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
