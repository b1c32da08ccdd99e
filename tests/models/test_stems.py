"""VMamba's stems (vssm/layers/stems.py): the image goes channels-last first, so each conv writes NHWC and the
LayerNorm after the permute reads it in place, with the same result as the NCHW formulation, forward and backward."""
import pytest
import torch
import torch.nn as nn

from vssm.layers.stems import ConvStem, PatchEmbedStem


def _nchw_reference(stem: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The stem's maths with NCHW conv outputs, written out (the norms get contiguous copies)."""
    if isinstance(stem, ConvStem):
        y = stem.norm1(stem.conv1(x).permute(0, 2, 3, 1).contiguous()).permute(0, 3, 1, 2)
        return stem.norm2(stem.conv2(stem.act(y)).permute(0, 2, 3, 1).contiguous())
    return stem.norm(stem.proj(x).permute(0, 2, 3, 1).contiguous())


@pytest.mark.parametrize("cls", [ConvStem, PatchEmbedStem])
def test_norms_read_the_conv_output_in_place_and_match_nchw(cls):
    torch.manual_seed(0)
    stem = cls(3, 32)
    contiguous_inputs = []
    for m in stem.modules():
        if isinstance(m, nn.LayerNorm):
            m.register_forward_pre_hook(lambda mod, args: contiguous_inputs.append(args[0].is_contiguous()))
    x = torch.randn(2, 3, 40, 40, requires_grad=True)
    y = stem(x)
    assert len(contiguous_inputs) == (2 if cls is ConvStem else 1)
    assert all(contiguous_inputs), "a norm got a permuted (non-contiguous) view: it copies it, forward and backward"
    assert y.shape == (2, 10, 10, 32) and y.is_contiguous()

    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *stem.parameters()], g)
    ref = _nchw_reference(stem, x)
    ref_grads = torch.autograd.grad(ref, [x, *stem.parameters()], g)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_channels_last_image_is_taken_as_it_is():
    torch.manual_seed(0)
    stem = ConvStem(3, 32)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(stem(x.contiguous(memory_format=torch.channels_last)), stem(x), rtol=0, atol=0)
