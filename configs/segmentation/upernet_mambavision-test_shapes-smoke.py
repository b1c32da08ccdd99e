# Smoke test of the UperNet MambaVision recipe on CPU: the segmentor of
# upernet_mambavision-t_16xb1-160k_ade20k-512x512.py with the 0.3M-parameter `test_mambavision` backbone and the narrow
# BatchNorm heads of the base upernet_shapes-smoke.py, trained with the recipe's AdamW for 4 iterations of 2 images on
# the coloured-shapes scenes of vssm.data.shapes at 128x128 (9 classes: background and 8 shapes; the base says where the
# data set is generated).
# Target: none. It checks that training, checkpointing, resuming and mIoU evaluation run.
#   python tools/mm_train.py configs/segmentation/upernet_mambavision-test_shapes-smoke.py
_base_ = ['./_base_/upernet_shapes-smoke.py']

model = dict(
    backbone=dict(_delete_=True, type='MambaVisionBackbone', arch=dict(base='test', window_size=(2, 2, 16, 8)),
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(in_channels=[16, 32, 48, 64]),
    auxiliary_head=dict(in_channels=48))
optim_wrapper = dict(optimizer=dict(lr=0.00005))  # the recipe's
