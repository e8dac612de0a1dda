"""PyTorch -> ONNX: an export-friendly twin of the trained Classifier.

The training modules are written for clarity; TFLite-Micro needs a graph of
its builtins with static shapes. `Exportable` computes the same logits from
the same weights (a test holds it to the Classifier in float) for one
sentence padded to L = cfg.max_len, with int32 ids as the only input:

- Nano Embedder: the token and position tables (r wide) are concatenated and
  projected by ONE Linear (2r -> d). The position table stays r wide (4 kB in
  int8), instead of being constant-folded into an [L, d] table (32 kB).
- Segments: single-sentence inputs have segment 0 on every real token, so the
  segment vector seg[0] becomes that Linear's bias. Pair inputs are refused
  (see `check_single_segment`).
- Padding: padded keys get an additive -MASK_BIAS before the softmax, from a
  SELECT_V2 on (ids == PAD), not masked_fill(-inf) (no inf in int8). Queries
  are never masked: the head reads only [CLS] (or pools over real tokens).
  In the int8 graph exact_mask.py replaces that ADD by selects (padded keys
  at the int8 minimum, then at probability 0): onnx2tf would mis-transpose
  a SELECT_V2 on the L x L map.
- RMSNorm weight, 1/sqrt(d) and the lambdas are folded into the Linears that
  follow (K = V = h, so the norm weight goes into both the query and the
  output projection), which removes one L x L MUL per layer.
- The causal depthwise conv is a Conv2d over (1, k) with groups = d. onnx2tf
  emits it as a grouped CONV_2D; optimize.py rewrites that into
  DEPTHWISE_CONV_2D (and drops onnx2tf's negative-index guard on the GATHER,
  folds its layout detours and orders the ops for the arena).
- The last layer only computes the [CLS] row (cls pooling): nothing else is
  read, and it drops one L x L score map.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from embbert.errors import UserError
from embbert.models import Classifier
from embbert.tokenizer import PAD_ID

OPSET = 17
# Added to the score of a padded key. The softmax subtracts the row max, so the
# bias only has to push padded keys far enough below it that exp() is 0 in
# int8 (TFLite-Micro's int8 softmax zeroes differences beyond ~ -16).
MASK_BIAS = 32.0


class ExportError(UserError):
    """The model has a part this exporter cannot express with TFLite-Micro builtins."""


def _pad_bias(ids: torch.Tensor) -> torch.Tensor:
    """(1, L) int32 -> (1, 1, L) float: -MASK_BIAS on padded keys, 0 on real ones."""
    zero = torch.zeros((), dtype=torch.float32)
    pad = torch.full((), PAD_ID, dtype=ids.dtype)  # same dtype as ids: no int64 CAST in the graph
    return torch.where(ids == pad, zero - MASK_BIAS, zero).unsqueeze(1)


class NanoEmbedding(nn.Module):
    """ids (1, L) -> (1, L, d): token table and position table, one projection."""

    def __init__(self, embedder: nn.Module, max_len: int):
        super().__init__()
        tok_w, pos_w = embedder.token.weight.detach(), embedder.position.weight.detach()[:max_len]
        self.token = nn.Parameter(tok_w.clone())  # (V, r)
        self.position = nn.Parameter(pos_w.clone().unsqueeze(0))  # (1, L, r)
        r = tok_w.shape[1]
        if isinstance(embedder.token_proj, nn.Linear):
            weight = torch.cat([embedder.token_proj.weight, embedder.position_proj.weight], dim=1)  # (d, 2r)
        else:  # plain d-wide tables: the "projection" is the identity on each half
            eye = torch.eye(r)
            weight = torch.cat([eye, eye], dim=1)
        self.proj = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.proj.weight.copy_(weight)
            self.proj.bias.copy_(embedder.segment.weight[0])  # segment 0 on every real token

    def forward(self, ids):  # (1, L) int32
        tok = F.embedding(ids, self.token)  # (1, L, r)
        return self.proj(torch.cat([tok, self.position], dim=-1))  # (1, L, 2r) -> (1, L, d)


class RMSScale(nn.Module):
    """1 / rms(x) per position: rsqrt(mean(x^2) + eps), (1, L, d) -> (1, L, 1).

    RMSNorm without its weight (folded into the Linears that follow)."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps)


class DepthwiseConv(nn.Module):
    """Causal depthwise conv as Conv2d over (1, k): (1, L, d) -> (1, L, d)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):  # weight (d, 1, k)
        super().__init__()
        d, _, k = weight.shape
        self.kernel = k
        self.conv = nn.Conv2d(d, d, (1, k), groups=d)
        with torch.no_grad():
            self.conv.weight.copy_(weight.unsqueeze(2))  # (d, 1, 1, k)
            self.conv.bias.copy_(bias)

    def forward(self, x_t):  # (1, d, L): channels first, as the conv wants them
        x = F.pad(x_t.unsqueeze(2), (self.kernel - 1, 0))  # (1, d, 1, k-1+L)
        return self.conv(x).squeeze(2).transpose(1, 2)  # (1, L, d)


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    return lin


class EmbBERTBlock(nn.Module):
    """One EmbBERT layer with the norm weight, 1/sqrt(d) and lambdas folded in."""

    def __init__(self, layer: nn.Module, cls_only: bool):
        super().__init__()
        self.cls_only = cls_only
        w = layer.norm.weight.detach()
        att = layer.attention
        s = att.scale
        self.rms = RMSScale(layer.norm.eps)
        # q' = s * w (.) (Wq (w (.) h0) + bq): scores = q' . h0, exactly q . h * s.
        self.query = _linear(s * w[:, None] * att.query.weight * w[None, :], s * w * att.query.bias)
        l1, l2 = 1.0, 0.0
        if layer.conv is not None:
            l1 = torch.exp(torch.dot(layer.lq1, layer.lk1)).item()
            l2 = torch.exp(torch.dot(layer.lq2, layer.lk2)).item()
        # out = l1 * Wo (weights @ (w (.) h0)) + l1 * bo
        self.attn_out = _linear(l1 * att.out.weight * w[None, :], l1 * att.out.bias)
        self.conv = None
        if layer.conv is not None:
            conv = layer.conv.conv.conv  # nn.Conv1d (d, 1, k)
            self.conv = DepthwiseConv(conv.weight.detach() * w[:, None, None], conv.bias.detach())
            self.conv_out = _linear(-l2 * layer.conv.out.weight, -l2 * layer.conv.out.bias)

    def forward(self, x, pad_bias):  # x (1, L, d), pad_bias (1, 1, L)
        return self._cls_row(x, pad_bias) if self.cls_only else self._all_rows(x, pad_bias)

    def _all_rows(self, x, pad_bias):
        """x is not held across the attention: after it, x = h * rms(x) is
        computed again from h (h = x / rms(x) is the attention's value input,
        alive anyway). The arena's peak, the attention, then holds the L x L
        weights, h^T and one [L, d] tensor instead of two."""
        ms = (x * x).mean(-1, keepdim=True) + self.rms.eps  # (1, L, 1)
        inv = torch.rsqrt(ms)
        rms = ms * inv  # sqrt(ms) without SQRT
        h = x * inv  # (1, L, d)
        h_t = x.transpose(1, 2) * inv.transpose(1, 2)  # (1, d, L), see _cls_row
        q = self.query(h)  # (1, L, d)
        scores = torch.matmul(q, h.transpose(1, 2)) + pad_bias  # (1, L, L)
        weights = torch.softmax(scores, dim=-1)
        x = h * rms + self.attn_out(torch.matmul(weights, h_t.transpose(1, 2)))  # (1, L, d)
        if self.conv is not None:
            x = x + self.conv_out(F.silu(self.conv(h_t)))
        return x

    def _cls_row(self, x, pad_bias):
        # h is needed in two layouts. TFLite-Micro's BATCH_MATMUL copies a
        # right-hand side that is not already "transposed" into a PERSISTENT
        # buffer (32 kB per op at L 256, d 128, never reused). Giving both
        # products their right-hand side as adj_y operands avoids that: h for
        # q @ h^T, h^T for weights @ h. h^T is computed from x^T (not by
        # transposing h), so no exporter folds the two transposes away.
        inv = self.rms(x)  # (1, L, 1)
        h = x * inv  # (1, L, d)
        h_t = x.transpose(1, 2) * inv.transpose(1, 2)  # (1, d, L)
        x = x[:, :1] if self.cls_only else x  # (1, Lq, d), Lq = 1 or L
        # The conv branch first, added to the residual at once: its tensors
        # (the padded conv input above all) are dead before the L x L scores
        # exist, which is the arena's peak.
        if self.conv is not None:
            # causal: output 0 of the conv only sees position 0
            c = self.conv(h_t[:, :, :1] if self.cls_only else h_t)  # (1, Lq, d)
            x = x + self.conv_out(F.silu(c))
        q = self.query(h[:, :1] if self.cls_only else h)  # (1, Lq, d)
        scores = torch.matmul(q, h.transpose(1, 2)) + pad_bias  # (1, Lq, L)
        weights = torch.softmax(scores, dim=-1)  # (1, Lq, L)
        return x + self.attn_out(torch.matmul(weights, h_t.transpose(1, 2)))  # (1, Lq, d)


class ExportEmbBERT(nn.Module):
    """EmbBERT family, [CLS] head: ids (1, L) int32 -> logits (1, C)."""

    def __init__(self, model: Classifier):
        super().__init__()
        cfg = model.cfg
        if cfg.pooling != "cls":
            raise ExportError(f"{cfg.name}: the EmbBERT exporter reads the [CLS] vector; pooling {cfg.pooling!r} is not supported")
        bb = model.backbone
        self.embed = NanoEmbedding(bb.embedder, cfg.max_len)
        n = len(bb.layers)
        self.blocks = nn.ModuleList(EmbBERTBlock(layer, cls_only=(i == n - 1)) for i, layer in enumerate(bb.layers))
        self.head = model.head

    def forward(self, ids):  # (1, L) int32
        pad_bias = _pad_bias(ids)
        x = self.embed(ids)  # (1, L, d)
        for block in self.blocks:
            x = block(x, pad_bias)
        return self.head(x[:, 0])  # (1, C)


def _real_tokens(ids: torch.Tensor) -> torch.Tensor:
    """(1, L) int32 -> (1, L, 1) float: 1 on real tokens, 0 on [PAD]."""
    zero, one = torch.zeros(()), torch.ones(())
    pad = torch.full((), PAD_ID, dtype=ids.dtype)
    return torch.where(ids == pad, zero, one).unsqueeze(-1)


def _rms_pool(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sqrt(sum_t(h^2 m) / sum_t(m) + 1e-6), as embbert.models.pool, with
    sqrt(v) = v * rsqrt(v) and 1/n = rsqrt(n)^2 (int8 TFLite-Micro has RSQRT,
    not SQRT or an int8 DIV we rely on)."""
    total = (h * h * real).sum(1)  # (1, d)
    inv_sqrt_n = torch.rsqrt(real.sum(1))  # (1, 1)
    v = total * inv_sqrt_n * inv_sqrt_n + 1e-6
    return v * torch.rsqrt(v)


class ExportEmbedder(nn.Module):
    """Embedder-only baselines (+ causal conv), RMS pooling: ids (1, L) int32 -> logits (1, C)."""

    def __init__(self, model: Classifier):
        super().__init__()
        cfg, bb = model.cfg, model.backbone
        self.embed = NanoEmbedding(bb.embedder, cfg.max_len)
        self.conv = None
        if bb.conv is not None:
            conv = bb.conv.conv
            self.conv = DepthwiseConv(conv.weight.detach(), conv.bias.detach())
        self.pooling = cfg.pooling
        self.head = model.head

    def forward(self, ids):
        x = self.embed(ids)  # (1, L, d)
        if self.conv is not None:
            x = x + F.silu(self.conv(x.transpose(1, 2)))
        pooled = _rms_pool(x, _real_tokens(ids)) if self.pooling == "rms" else x[:, 0]
        return self.head(pooled)


def _layer_norm(x, norm: nn.LayerNorm):
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    return xc * torch.rsqrt((xc * xc).mean(-1, keepdim=True) + norm.eps) * norm.weight + norm.bias


def _gelu_tanh(x):
    """tanh GELU with x^3 as x*x*x (POW is not a TFLite-Micro builtin)."""
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


class ExportBERTLayer(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        att = layer.attention
        self.efficient = not hasattr(att, "key")
        if self.efficient:  # K = V = x: fold the scale into the query
            self.query = _linear(att.scale * att.query.weight, att.scale * att.query.bias)
        else:
            self.n_heads = att.n_heads
            self.query = _linear(att.scale * att.query.weight, att.scale * att.query.bias)

    def heads(self, x):  # (1, L, d) -> (1, H, L, d/H)
        return x.view(1, x.shape[1], self.n_heads, -1).transpose(1, 2)

    def forward(self, x, pad_bias):  # x (1, L, d), pad_bias (1, 1, L)
        layer, att = self.layer, self.layer.attention
        if self.efficient:
            scores = torch.matmul(self.query(x), x.transpose(1, 2)) + pad_bias  # (1, L, L)
            a = att.out(torch.matmul(torch.softmax(scores, -1), x))  # (1, L, d)
        else:
            q, k, v = self.heads(self.query(x)), self.heads(att.key(x)), self.heads(att.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) + pad_bias.unsqueeze(1)  # (1, H, L, L)
            heads = torch.matmul(torch.softmax(scores, -1), v)  # (1, H, L, d/H)
            a = att.out(heads.transpose(1, 2).reshape(1, x.shape[1], -1))  # (1, L, d)
        x = _layer_norm(x + a, layer.norm1)
        if layer.ff is not None:
            x = _layer_norm(x + layer.ff.down(_gelu_tanh(layer.ff.up(x))), layer.norm2)
        return x


class ExportBERT(nn.Module):
    """BERT family (post-LN), [CLS] head: ids (1, L) int32 -> logits (1, C)."""

    def __init__(self, model: Classifier):
        super().__init__()
        cfg, bb = model.cfg, model.backbone
        if cfg.pooling != "cls":
            raise ExportError(f"{cfg.name}: the BERT exporter reads the [CLS] vector; pooling {cfg.pooling!r} is not supported")
        self.embed = NanoEmbedding(bb.embedder, cfg.max_len)
        self.embed_norm = bb.embed_norm
        self.layers = nn.ModuleList(ExportBERTLayer(layer) for layer in bb.layers)
        self.head = model.head

    def forward(self, ids):
        pad_bias = _pad_bias(ids)
        x = _layer_norm(self.embed(ids), self.embed_norm)
        for layer in self.layers:
            x = layer(x, pad_bias)
        return self.head(x[:, 0])


def exportable(model: Classifier) -> nn.Module:
    """The export twin of a trained Classifier, or an ExportError saying why not."""
    family = model.cfg.family
    if family == "embbert":
        return ExportEmbBERT(model).eval()
    if family == "embedder":
        return ExportEmbedder(model).eval()
    if family == "bert":
        return ExportBERT(model).eval()
    cfg = model.cfg
    if family == "mamba":
        # Unrolled, each step needs at least: slice decay_t, slice drive_t, MUL, ADD, the c_t read-out.
        ops = 5 * cfg.max_len * cfg.n_layers
        raise ExportError(
            f"{cfg.name}: no int8 exporter for the mamba family: its selective scan is a {cfg.max_len}-step "
            f"recurrence in each of its {cfg.n_layers} layers (h_t = exp(dt_t*A)*h_(t-1) + dt_t*b_t*u_t, "
            f"y_t = h_t.c_t), which a static TFLite graph must unroll: >= 5 ops per step, >= {ops:,} ops; "
            f"TFLite-Micro keeps >= 88 B of persistent arena per op (64 B node struct + 24 B output tensor, "
            f"measured), >= {ops * 88 // 1000:,} kB before any activation (budget 200 kB), and the int8 state "
            f"would be requantized {cfg.max_len} times in series")
    raise ExportError(f"{cfg.name}: no int8 exporter for the {family!r} family")


def check_single_segment(pairs: bool, name: str) -> None:
    if pairs:
        raise ExportError(f"{name} was trained on sentence pairs; the converter folds segment 0 into the "
                          "embedding and supports single sentences only")


def to_onnx(module: nn.Module, max_len: int, path: Path) -> None:
    """Export with the legacy (TorchScript) exporter at opset 17, then simplify with onnxsim."""
    import onnx
    from onnxsim import simplify

    ids = torch.zeros(1, max_len, dtype=torch.int32)
    ids[0, :3] = torch.tensor([2, 5, 4])
    with torch.no_grad():
        torch.onnx.export(module, (ids,), str(path), opset_version=OPSET, input_names=["ids"],
                          output_names=["logits"], dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    simplified, ok = simplify(model)
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified ONNX graph")
    onnx.save(simplified, str(path))
