"""Holding frozen pretrained networks inside a module without making them part of its state.

Loss networks (identity, LPIPS) must follow the model across devices and dtypes, but must not
be trained, must stay in eval mode, and must not bloat checkpoints with hundreds of MB of
weights that are loaded from the registry anyway.
"""

from __future__ import annotations

from torch import nn


class FrozenNets(nn.Module):
    """Base class: ``self.frozen(name, net)`` stores ``net`` outside parameters/state_dict.

    ``.to()``/``.cuda()``/``.half()`` reach frozen nets; ``.train()`` does not (they stay in
    eval); ``.parameters()`` and ``state_dict()`` do not include them.
    """

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_frozen", {})

    def frozen(self, name: str, net: nn.Module | None) -> nn.Module | None:
        if net is not None:
            net.eval()
            net.requires_grad_(False)
        self._frozen[name] = net
        return net

    def get_frozen(self, name: str) -> nn.Module | None:
        return self._frozen.get(name)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        for net in self._frozen.values():
            if net is not None:
                net._apply(fn)
        return self
