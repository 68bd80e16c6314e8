"""SwapInpaintLoss follows CascadeLoss's contract: it holds the frozen identity encoder and
computes the network features its terms need; the values are those of the tensor-level call."""

from __future__ import annotations

import pytest
import torch

from facectx.losses.swapinpaint import SwapInpaintLoss

from .conftest import TinyIdentity, make_module


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    swapped = (torch.rand(2, 3, 64, 64, generator=g) * 2 - 1).requires_grad_(True)
    output = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    content = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    keep = torch.ones(2, 1, 64, 64)
    keep[..., 16:48, 16:48] = 0
    return swapped, output, content, keep, torch.tensor([1.0, 0.0])


def test_the_loss_computes_identity_and_attribute_features_itself():
    identity = TinyIdentity()
    loss = SwapInpaintLoss(identity=identity)
    assert loss.identity is identity and not identity.training
    assert not list(loss.parameters()) and not loss.state_dict()  # I is not the loss's state
    swapped, output, content, keep, same = _inputs()
    z_ref = identity(torch.rand(2, 3, 64, 64))

    def attributes(x):
        return [x.mean(dim=1, keepdim=True), x[..., ::2, ::2]]

    att_content = attributes(content)
    d_fake = [torch.zeros(2, 1, 4, 4)]
    total, logs = loss.swap_loss(
        swapped,
        content,
        keep,
        same,
        id_reference=z_ref,
        att_content=att_content,
        d_fake=d_fake,
        output=output,
        attributes=attributes,
    )
    ref_total, ref_logs = SwapInpaintLoss().swap_loss(
        swapped,
        content,
        keep,
        same,
        identity(swapped),
        z_ref,
        attributes(swapped),
        attributes(output),
        att_content,
        d_fake,
    )
    assert torch.equal(total, ref_total)
    assert logs.keys() == ref_logs.keys() and all(torch.equal(logs[k], ref_logs[k]) for k in logs)
    assert {"g/id", "g/id_w", "g/att", "g/att_w"} <= set(logs)
    total.backward()
    assert swapped.grad is not None and not any(p.grad is not None for p in identity.parameters())


def test_without_an_identity_network_the_identity_term_says_so():
    swapped, _, content, keep, same = _inputs()
    with pytest.raises(ValueError, match="no identity network"):
        SwapInpaintLoss(lambda_adv=0, lambda_att=0).swap_loss(
            swapped, content, keep, same, id_reference=torch.zeros(2, 16)
        )


def test_the_module_hands_its_identity_encoder_to_the_loss():
    identity = TinyIdentity()
    model = make_module(identity=identity)
    assert model.identity is identity and model.loss.identity is identity
    assert not any(k.startswith(("identity", "loss")) for k in model.state_dict())
    assert (model.identity_name, model.identity_dim) == ("tiny-identity", 16)
