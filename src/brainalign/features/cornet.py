"""CORnet-S: a shallow recurrent network whose areas map to the ventral stream (V1, V2, V4, IT).

Written from Kubilius et al. (2019), "Brain-Like Object Recognition with High-Performing Shallow
Recurrent ANNs" (NeurIPS). The module names follow the authors' release so that their ImageNet
checkpoint loads as is:

- ``V1``: 7x7 conv (64, stride 2) + BN + ReLU, 3x3 max-pool (stride 2), 3x3 conv (64) + BN + ReLU;
- ``V2``, ``V4``, ``IT``: one CORblock-S each, unrolled for 2, 4 and 2 time steps, with 128, 256
  and 512 channels. A block first maps its input to its width (``conv_input``, 1x1); then at each
  time step a bottleneck (``conv1`` 1x1 to 4x the width, ``conv2`` 3x3, ``conv3`` 1x1 back) with
  batch norms of its own per time step (``norm1_t``, ``norm2_t``, ``norm3_t``) is added to a skip
  path and passed through a ReLU. The first step halves the resolution (``conv2`` with stride 2;
  the skip path is a strided 1x1 conv ``skip`` + ``norm_skip``), later steps keep it (same
  ``conv2`` weights with stride 1, identity skip). ``output`` (an identity) marks each step's
  output; the area's output is the last step's;
- ``decoder``: global average pooling, flatten, linear (1000 ImageNet classes), ``output``.

The network has 53,416,616 parameters; at 224 px V1 gives 64x56x56, V2 128x28x28,
V4 256x14x14 and IT 512x7x7.

No package ships the trained weights: download the authors' checkpoint
(``cornet_s-1d3f7974.pth``, linked from github.com/dicarlolab/CORnet) where the network is
reachable and give its path as ``weights``. Both the checkpoint as released (a dict with
``state_dict``, keys prefixed by ``module.`` from ``nn.DataParallel``) and a plain state dict
load.

Unlike the release, a block never changes ``conv2.stride`` while it runs (the later steps call
the convolution with the same weights functionally): the traced graph that reads layers out
(:func:`torch.fx.symbolic_trace`) then computes the same function as the network itself.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from brainalign.errors import ConfigError, ModelError

__all__ = [
    "AREAS",
    "CORblockS",
    "CORnetS",
    "build_cornet_s",
    "cornet_layer_nodes",
    "load_cornet_state_dict",
]

#: Areas of CORnet-S: (name, output channels, time steps); V1 is not recurrent.
AREAS: tuple[tuple[str, int, int], ...] = (("V1", 64, 1), ("V2", 128, 2), ("V4", 256, 4),
                                           ("IT", 512, 2))


class CORblockS(nn.Module):
    """One recurrent area of CORnet-S (V2, V4 or IT).

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the area (the bottleneck is ``scale`` times wider).
    times : int
        Time steps the block is unrolled for.
    """

    scale = 4

    def __init__(self, in_channels: int, out_channels: int, times: int = 1) -> None:
        super().__init__()
        self.times = times
        wide = out_channels * self.scale
        self.conv_input = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.skip = nn.Conv2d(out_channels, out_channels, kernel_size=1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(out_channels, wide, kernel_size=1, bias=False)
        self.nonlin1 = nn.ReLU()
        self.conv2 = nn.Conv2d(wide, wide, kernel_size=3, stride=2, padding=1, bias=False)
        self.nonlin2 = nn.ReLU()
        self.conv3 = nn.Conv2d(wide, out_channels, kernel_size=1, bias=False)
        self.nonlin3 = nn.ReLU()
        self.output = nn.Identity()
        for t in range(times):  # batch norms of their own at each time step
            setattr(self, f"norm1_{t}", nn.BatchNorm2d(wide))
            setattr(self, f"norm2_{t}", nn.BatchNorm2d(wide))
            setattr(self, f"norm3_{t}", nn.BatchNorm2d(out_channels))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Run the block.

        Parameters
        ----------
        inp : torch.Tensor, shape (n, in_channels, height, width)

        Returns
        -------
        out : torch.Tensor, shape (n, out_channels, height // 2, width // 2)
            The output of the last time step (rounded up for odd sizes).
        """
        x = self.conv_input(inp)
        out = x
        for t in range(self.times):
            y = self.nonlin1(getattr(self, f"norm1_{t}")(self.conv1(x)))
            if t == 0:
                skip = self.norm_skip(self.skip(x))
                y = self.conv2(y)  # stride 2
            else:
                skip = x
                y = F.conv2d(y, self.conv2.weight, None, stride=1, padding=1)
            y = self.nonlin2(getattr(self, f"norm2_{t}")(y))
            y = getattr(self, f"norm3_{t}")(self.conv3(y))
            x = self.nonlin3(y + skip)
            out = self.output(x)
        return out


class CORnetS(nn.Module):
    """CORnet-S (Kubilius et al. 2019): areas ``V1``, ``V2``, ``V4``, ``IT`` and ``decoder``.

    Parameters
    ----------
    num_classes : int
        Outputs of the decoder's linear layer.

    Notes
    -----
    Initialisation follows the release: convolutions N(0, 2 / (k * k * out_channels)), batch
    norms weight 1 and bias 0, the linear layer torch's default.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.V1 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm1", nn.BatchNorm2d(64)),
            ("nonlin1", nn.ReLU()),
            ("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ("conv2", nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)),
            ("norm2", nn.BatchNorm2d(64)),
            ("nonlin2", nn.ReLU()),
            ("output", nn.Identity()),
        ]))
        self.V2 = CORblockS(64, 128, times=2)
        self.V4 = CORblockS(128, 256, times=4)
        self.IT = CORblockS(256, 512, times=2)
        self.decoder = nn.Sequential(OrderedDict([
            ("avgpool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("linear", nn.Linear(512, num_classes)),
            ("output", nn.Identity()),
        ]))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (n, 3, height, width)
            ImageNet-normalised images (224 px in training).

        Returns
        -------
        logits : torch.Tensor, shape (n, num_classes)
        """
        return self.decoder(self.IT(self.V4(self.V2(self.V1(x)))))


def load_cornet_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read CORnet-S weights from a local file.

    Parameters
    ----------
    path : str or Path
        A ``.pth`` file holding the checkpoint as released (a dict whose ``state_dict`` has keys
        prefixed by ``module.``) or a plain state dict (prefixed or not), or a ``.safetensors``
        file.

    Returns
    -------
    state : dict of str to torch.Tensor
        The state dict with keys as in :class:`CORnetS` (``V1.conv1.weight`` ...).

    Raises
    ------
    ModelError
        The file cannot be read as a state dict.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, not a torch file, or pickled objects beyond tensors
        raise ModelError(
            f"CORnet-S weights file '{path}' cannot be read as a state dict: "
            f"{type(exc).__name__}: {exc}. Give the checkpoint as released "
            "(cornet_s-1d3f7974.pth) or a state dict saved with torch.save(model.state_dict()); "
            "tensors are read with weights_only=True, so a file that pickles other objects must "
            "be re-saved as its state dict only (from a copy you trust)."
        ) from exc
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()
    ):
        raise ModelError(
            f"CORnet-S weights file '{path}' holds a {type(raw).__name__}, not a state dict "
            "(names -> tensors) or a checkpoint dict with 'state_dict'. Give the checkpoint as "
            "released (cornet_s-1d3f7974.pth) or torch.save(model.state_dict())."
        )
    if raw and all(k.startswith("module.") for k in raw):  # saved from nn.DataParallel
        raw = {k[len("module."):]: v for k, v in raw.items()}
    return dict(raw)


def _load_weights(model: CORnetS, path: str | Path) -> None:
    state = load_cornet_state_dict(path)
    expected = model.state_dict()
    # batch-norm counters are absent from checkpoints saved before torch 0.4.1
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected)
                         if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong_shape:
        def few(keys: Sequence[str]) -> str:
            if not keys:
                return "none"
            return f"{len(keys)} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})"

        raise ModelError(
            f"CORnet-S weights file '{path}' does not fit the network: missing keys "
            f"{few(missing)}, unexpected keys {few(unexpected)}, wrong shapes {few(wrong_shape)}; "
            "expected keys such as 'V1.conv1.weight', 'V4.norm1_3.weight', "
            "'decoder.linear.weight' (a 'module.' prefix on every key is accepted). Give the "
            "CORnet-S checkpoint (cornet_s-1d3f7974.pth from github.com/dicarlolab/CORnet), not "
            "another CORnet (Z, R, RT) or model."
        )
    # assign: the model may be built on the meta device; the file's tensors become its own
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    left = [k for k, v in model.state_dict().items() if v.is_meta]
    if left:  # pragma: no cover - every key was checked above
        raise ModelError(f"CORnet-S weights file '{path}' left {left} unset.")


def build_cornet_s(weights: str, seed: int) -> CORnetS:
    """Build CORnet-S with local or random weights.

    Parameters
    ----------
    weights : str
        "random" (initialised from ``seed``) or the path to a local checkpoint
        (see :func:`load_cornet_state_dict`). "shipped" is refused: no package ships them.
    seed : int
        Seed of torch's generator for the random initialisation.

    Returns
    -------
    model : CORnetS
        On the CPU, in training mode (as torch builds modules).

    Raises
    ------
    ConfigError
        ``weights`` is "shipped".
    ModelError
        The file cannot be read or does not fit the network.
    """
    if weights == "shipped":
        from brainalign.features.models import _WEIGHTS_HINTS

        raise ConfigError(
            "Weights 'shipped' are not available for 'cornet_s': no package ships them and "
            f"nothing is downloaded at run time. {_WEIGHTS_HINTS['cornet_s']}"
        )
    if weights == "random":
        torch.manual_seed(seed)
        return CORnetS()
    with torch.device("meta"):  # the file gives every tensor: skip the random initialisation
        model = CORnetS()
    _load_weights(model, weights)
    return model


def cornet_layer_nodes(model: nn.Module, nodes: Sequence[str]) -> dict:
    """The naming rule of CORnet-S: each area's output at its last time step, then the decoder.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`CORnetS`.
    nodes : sequence of str
        Its eval-mode graph node names in execution order; the ``output`` identity of an area
        unrolled for T steps appears T times (``V4.output``, ``V4.output_1`` ... ``V4.output_3``).

    Returns
    -------
    found : dict of str to LayerNode
        ``V1``, ``V2``, ``V4``, ``IT``, ``decoder`` (the pooled 512 features), ``logits``.
    """
    from brainalign.features.models import LayerNode, _ordinal

    found = {}
    for area, channels, times in AREAS:
        calls = [n for n in nodes if n == f"{area}.output" or n.startswith(f"{area}.output_")]
        if area == "V1":
            what = (f"V1: 7x7 conv stride 2 + BN + ReLU, max-pool, 3x3 conv + BN + ReLU "
                    f"({calls[-1]})")
        else:
            what = (f"{area}: CORblock-S ({channels} channels) after its {_ordinal(times)} "
                    f"and last time step ({calls[-1]})")
        found[area] = LayerNode(calls[-1], what)
    flatten = next(n for n in nodes if n.startswith("decoder.flatten"))
    found["decoder"] = LayerNode(flatten, f"decoder: global average pooling of IT ({flatten})")
    linear = next(n for n in nodes if n.startswith("decoder.linear"))
    found["logits"] = LayerNode(linear, f"decoder: linear classifier, logits ({linear})")
    return found

