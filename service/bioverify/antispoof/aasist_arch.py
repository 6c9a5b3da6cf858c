"""AASIST in torch, written from the paper (Jung et al., "AASIST: Audio Anti-Spoofing using
Integrated Spectro-Temporal Graph Attention Networks", ICASSP 2022).

Used only to export the official checkpoints to ONNX (``export_aasist``); the service runs the
ONNX file with onnxruntime and never imports this module. Parameter and buffer names match the
official state dicts, so ``load_state_dict(strict=True)`` accepts both ``AASIST.pth`` and
``AASIST-L.pth``.

The network, input a raw 16 kHz waveform ``(batch, samples)``:

1. **Sinc front end.** 70 fixed band-pass filters (129 taps, Hamming-windowed ideal band-pass,
   band edges equally spaced on the mel scale from 0 Hz to Nyquist), no learnable weights.
   The absolute output is max-pooled 3×3 over (filter, time), giving a spectro-temporal map
   of 23 sub-bands, then BatchNorm + SELU.
2. **Residual encoder.** Six 2-D residual blocks (conv 2×3, BN, SELU, conv 2×3, 1×3
   projection shortcut where the channel count changes, max-pool 1×3 over time).
3. **Graphs.** Spectral graph: max of |e| over time, one node per sub-band (+ a learnt
   positional embedding). Temporal graph: max of |e| over frequency, one node per frame.
   Each goes through a graph attention layer and a graph pooling layer (sigmoid node scores,
   keep the top-k nodes, scaled by their score).
4. **HS-GAL.** Two parallel branches, each with its own learnt stack (master) node: a
   heterogeneous graph attention layer over the union of temporal and spectral nodes (with
   separate attention weights for T-T, S-S and T-S edges, and a master node that attends to
   all nodes), graph pooling of each node type, a second heterogeneous layer added
   residually.
5. **Max graph operation and readout.** Element-wise maximum over the two branches; the
   readout concatenates max |node| and mean node of each type with the master node (5 × 32)
   and a linear layer gives two logits: index 0 spoof, **index 1 bona fide** (upstream uses
   the class-1 logit as the score).

Two facts about the official checkpoints that this module reproduces on purpose:

* In every residual block but the first, the checkpoint has a pre-activation BatchNorm
  (``bn1``) whose output the upstream forward pass discards (``conv1`` reads the block input).
  The weights were trained that way, so ``bn1`` is kept (strict loading needs it) and skipped.
* The first branch of HS-GAL takes the master node parameter itself (batch dimension 1),
  which broadcasts over the batch, exactly like the expanded one would.

The per-configuration values (filters, graph sizes, pool ratios, temperatures) come from the
upstream JSON config (``model_config``); ``temperatures[3]`` and ``pool_ratios[3]`` are unused
by the architecture, as upstream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLE_RATE = 16000
NB_SAMP = 64600
BONAFIDE_INDEX = 1
"""Output logit index of the bona fide class (upstream labels bona fide 1, spoof 0)."""


@dataclass(frozen=True)
class AasistConfig:
    """The ``model_config`` section of an upstream AASIST config file."""

    nb_samp: int
    first_conv: int
    filts: tuple[int | tuple[int, int], ...]
    gat_dims: tuple[int, int]
    pool_ratios: tuple[float, ...]
    temperatures: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AasistConfig:
        filts_raw = list(data["filts"])
        filts: list[int | tuple[int, int]] = [int(filts_raw[0])]
        filts.extend((int(a), int(b)) for a, b in filts_raw[1:])
        if len(filts) != 5:
            raise ValueError("filts must have 5 entries (sinc filters + 4 residual stages)")
        gat = [int(d) for d in data["gat_dims"]]
        return cls(
            nb_samp=int(data.get("nb_samp", NB_SAMP)),
            first_conv=int(data["first_conv"]),
            filts=tuple(filts),
            gat_dims=(gat[0], gat[1]),
            pool_ratios=tuple(float(r) for r in data["pool_ratios"]),
            temperatures=tuple(float(t) for t in data["temperatures"]),
        )

    @classmethod
    def from_file(cls, path: Path) -> AasistConfig:
        """Read an upstream ``.conf`` (JSON); everything but ``model_config`` is ignored."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_dict(data.get("model_config", data))

    def stage(self, i: int) -> tuple[int, int]:
        value = self.filts[i]
        if isinstance(value, int):
            raise ValueError(f"filts[{i}] must be a pair of channel counts")
        return value

    @property
    def sinc_filters(self) -> int:
        value = self.filts[0]
        if not isinstance(value, int):
            raise ValueError("filts[0] must be the number of sinc filters")
        return value


def mel_bandpass_bank(n_filters: int, kernel_size: int, sample_rate: int) -> np.ndarray:
    """(n_filters, taps) Hamming-windowed ideal band-pass filters with mel-spaced edges.

    As upstream, the mel range is that of a 512-point FFT grid (0 Hz to Nyquist) and an even
    kernel size is made odd so that the filters are symmetric.
    """
    taps = kernel_size + 1 if kernel_size % 2 == 0 else kernel_size

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    grid = (sample_rate // 2) * np.linspace(0.0, 1.0, 512 // 2 + 1)
    mel = to_mel(grid)
    edges = to_hz(np.linspace(mel.min(), mel.max(), n_filters + 1))
    n = np.arange(-(taps - 1) / 2, (taps - 1) / 2 + 1)
    window = np.hamming(taps).astype(np.float32)
    bank = np.empty((n_filters, taps), dtype=np.float32)
    for i in range(n_filters):
        lo, hi = edges[i], edges[i + 1]
        ideal = 2 * hi / sample_rate * np.sinc(2 * hi * n / sample_rate) - (
            2 * lo / sample_rate * np.sinc(2 * lo * n / sample_rate)
        )
        bank[i] = window * ideal.astype(np.float32)
    return bank


class SincFrontEnd(nn.Module):
    """Fixed mel-spaced sinc band-pass filters applied to the waveform (no learnable weights).

    The filters are a non-persistent buffer: they are not in the checkpoint, and ONNX export
    turns them into constant convolution weights.
    """

    filters: Tensor

    def __init__(self, n_filters: int, kernel_size: int, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        bank = mel_bandpass_bank(n_filters, kernel_size, sample_rate)
        self.register_buffer("filters", torch.from_numpy(bank).unsqueeze(1), persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        """(batch, samples) → (batch, n_filters, samples - taps + 1)."""
        return F.conv1d(wave.unsqueeze(1), self.filters)


class ResidualBlock(nn.Module):
    """Conv(2×3) → BN → SELU → Conv(2×3), plus a (1×3) projection shortcut when the channel
    count changes, then max-pooling by 3 over time."""

    def __init__(self, channels: tuple[int, int], *, first: bool = False) -> None:
        super().__init__()
        c_in, c_out = channels
        if not first:
            # Present in the checkpoints, unused by the trained forward pass (see module doc).
            self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample: nn.Conv2d | None = (
            nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1)) if c_in != c_out else None
        )
        self.selu = nn.SELU()
        self.pool = nn.MaxPool2d((1, 3))

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.selu(self.bn2(self.conv1(x))))
        shortcut = self.conv_downsample(x) if self.conv_downsample is not None else x
        pooled: Tensor = self.pool(out + shortcut)
        return pooled


def _pairwise_products(x: Tensor) -> Tensor:
    """(batch, n, d) → (batch, n, n, d) with [i, j] = x_i ⊙ x_j."""
    return x.unsqueeze(2) * x.unsqueeze(1)


def _node_batchnorm(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm over the feature axis of (batch, nodes, dim), nodes pooled with the batch."""
    shape = x.shape
    normed: Tensor = bn(x.reshape(-1, shape[-1]))
    return normed.reshape(shape)


class GraphAttention(nn.Module):
    """Graph attention over a fully connected graph (GAT-S / GAT-T).

    Edge score ``w · tanh(W (x_i ⊙ x_j)) / T``, softmax over neighbours; the output is
    ``P1 (A x) + P2 x`` followed by BatchNorm and SELU.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.act = nn.SELU()
        self.temperature = temperature
        nn.init.xavier_normal_(self.att_weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_drop(x)
        scores = torch.tanh(self.att_proj(_pairwise_products(x))) @ self.att_weight
        att = torch.softmax(scores.squeeze(-1) / self.temperature, dim=-1)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        activated: Tensor = self.act(_node_batchnorm(self.bn, out))
        return activated


class HeteroGraphAttention(nn.Module):
    """Heterogeneous graph attention layer of HS-GAL over temporal (type 1) and spectral
    (type 2) nodes plus a stack (master) node.

    Each node type is first projected into a shared space; edges within type 1, within type 2
    and across types have their own attention vectors. The master node attends to every node
    with its own projection and attention vector.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight22 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weight12 = nn.Parameter(torch.empty(out_dim, 1))
        self.att_weightM = nn.Parameter(torch.empty(out_dim, 1))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.act = nn.SELU()
        self.temperature = temperature
        for weight in (self.att_weight11, self.att_weight22, self.att_weight12, self.att_weightM):
            nn.init.xavier_normal_(weight)

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n1 = x1.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        x = self.input_drop(x)

        # Node-to-node attention, with the edge type choosing the attention vector.
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))
        w = torch.cat([self.att_weight11, self.att_weight22, self.att_weight12], dim=1)
        s = hidden @ w  # (batch, n, n, 3): scores under the 1-1, 2-2 and cross weights
        top = torch.cat([s[:, :n1, :n1, 0], s[:, :n1, n1:, 2]], dim=2)
        bottom = torch.cat([s[:, n1:, :n1, 2], s[:, n1:, n1:, 1]], dim=2)
        scores = torch.cat([top, bottom], dim=1)
        att = torch.softmax(scores / self.temperature, dim=-1)

        # Master node: attends to all nodes (computed from the input nodes).
        m_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (batch, n, 1)
        m_att = torch.softmax(m_scores / self.temperature, dim=1)
        new_master = self.proj_with_attM(m_att.transpose(1, 2) @ x) + self.proj_without_attM(master)

        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        out = self.act(_node_batchnorm(self.bn, out))
        return out[:, :n1], out[:, n1:], new_master


class GraphPool(nn.Module):
    """Keep the ``ratio`` share of nodes with the highest sigmoid score (at least one), each
    scaled by its score, in descending score order."""

    def __init__(self, ratio: float, in_dim: int, dropout: float = 0.3) -> None:
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))  # (batch, n, 1)
        keep = max(int(h.shape[1] * self.ratio), 1)
        _, idx = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, idx.expand(-1, -1, h.shape[2]))


class Aasist(nn.Module):
    """The AASIST network: ``(batch, samples)`` float32 waveform → ``(batch, 2)`` logits."""

    def __init__(self, config: AasistConfig) -> None:
        super().__init__()
        self.config = config
        gat0, gat1 = config.gat_dims
        ratios, temps = config.pool_ratios, config.temperatures
        last = config.stage(4)[1]

        self.conv_time = SincFrontEnd(config.sinc_filters, config.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        self.selu = nn.SELU()
        self.encoder = nn.Sequential(
            nn.Sequential(ResidualBlock(config.stage(1), first=True)),
            nn.Sequential(ResidualBlock(config.stage(2))),
            nn.Sequential(ResidualBlock(config.stage(3))),
            nn.Sequential(ResidualBlock(config.stage(4))),
            nn.Sequential(ResidualBlock(config.stage(4))),
            nn.Sequential(ResidualBlock(config.stage(4))),
        )
        self.pos_S = nn.Parameter(torch.randn(1, 23, last))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat0))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat0))

        self.GAT_layer_S = GraphAttention(last, gat0, temps[0])
        self.GAT_layer_T = GraphAttention(last, gat0, temps[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(gat0, gat1, temps[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(gat1, gat1, temps[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(gat0, gat1, temps[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(gat1, gat1, temps[2])

        self.pool_S = GraphPool(ratios[0], gat0)
        self.pool_T = GraphPool(ratios[1], gat0)
        self.pool_hS1 = GraphPool(ratios[2], gat1)
        self.pool_hT1 = GraphPool(ratios[2], gat1)
        self.pool_hS2 = GraphPool(ratios[2], gat1)
        self.pool_hT2 = GraphPool(ratios[2], gat1)

        self.drop_way = nn.Dropout(0.2)
        self.drop = nn.Dropout(0.5)
        self.out_layer = nn.Linear(5 * gat1, 2)

    def _branch(
        self,
        first: HeteroGraphAttention,
        second: HeteroGraphAttention,
        pool_s: GraphPool,
        pool_t: GraphPool,
        out_t: Tensor,
        out_s: Tensor,
        master: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        t1, s1, m1 = first(out_t, out_s, master)
        s1 = pool_s(s1)
        t1 = pool_t(t1)
        t_aug, s_aug, m_aug = second(t1, s1, m1)
        return (
            self.drop_way(t1 + t_aug),
            self.drop_way(s1 + s_aug),
            self.drop_way(m1 + m_aug),
        )

    def forward(self, wave: Tensor) -> Tensor:
        x = self.conv_time(wave).unsqueeze(1)  # (batch, 1, filters, time)
        x = F.max_pool2d(torch.abs(x), (3, 3))
        x = self.selu(self.first_bn(x))
        e = self.encoder(x)  # (batch, channels, sub-bands, frames)

        e_s = torch.amax(torch.abs(e), dim=3).transpose(1, 2) + self.pos_S
        out_s = self.pool_S(self.GAT_layer_S(e_s))
        e_t = torch.amax(torch.abs(e), dim=2).transpose(1, 2)
        out_t = self.pool_T(self.GAT_layer_T(e_t))

        t1, s1, m1 = self._branch(
            self.HtrgGAT_layer_ST11,
            self.HtrgGAT_layer_ST12,
            self.pool_hS1,
            self.pool_hT1,
            out_t,
            out_s,
            self.master1,
        )
        t2, s2, m2 = self._branch(
            self.HtrgGAT_layer_ST21,
            self.HtrgGAT_layer_ST22,
            self.pool_hS2,
            self.pool_hT2,
            out_t,
            out_s,
            self.master2,
        )
        out_t = torch.maximum(t1, t2)
        out_s = torch.maximum(s1, s2)
        master = torch.maximum(m1, m2)

        hidden = torch.cat(
            [
                torch.amax(torch.abs(out_t), dim=1),
                out_t.mean(dim=1),
                torch.amax(torch.abs(out_s), dim=1),
                out_s.mean(dim=1),
                master.squeeze(1),
            ],
            dim=1,
        )
        return self.out_layer(self.drop(hidden))  # type: ignore[no-any-return]


def load_aasist(checkpoint: Path, config: Path | AasistConfig) -> Aasist:
    """Build the model for ``config`` and load ``checkpoint`` strictly, in eval mode."""
    cfg = config if isinstance(config, AasistConfig) else AasistConfig.from_file(config)
    model = Aasist(cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{checkpoint} does not hold a state dict")
    model.load_state_dict(state, strict=True)
    return model.eval()
