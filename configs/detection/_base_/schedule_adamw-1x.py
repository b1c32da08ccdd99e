# The 1x schedule of the published Mask R-CNN / RetinaNet recipes (Swin's detection setup, used by VMamba, MSVMamba,
# EfficientVMamba and MLLA): AdamW lr 1e-4 wd 0.05 (no decay on norm weights), 12 epochs with steps at 8 and 11, 1000
# linear warm-up iterations. Listed in place of mmdet's schedules/schedule_1x.py.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}))
