"""MAMBA: the paper's 2 MB state-space baseline, in plain PyTorch.

Token embedding (no positions: the causal scan already knows the order), then
n_layers residual blocks, then a final RMSNorm. One block, with
Di = mamba_expand * d inner channels, N = state_dim states and
R = ceil(d / 16) the rank of the step size:
    u, z = in_proj(norm(x))                      d -> 2 Di
    u    = silu(causal_depthwise_conv(u))        width mamba_conv
    dt, b, c = x_proj(u)                         Di -> R + 2 N
    dt   = softplus(dt_proj(dt))                 R -> Di
    y    = selective_scan(u, dt, A = -exp(A_log), b, c) + D u
    x    = x + out_proj(y * silu(z))             Di -> d

The scan is a loop over time (T <= 256 steps). `selective_scan_reference`
writes it as the recurrence reads, one autograd op at a time: it is the oracle
of the tests. `selective_scan` computes the same thing with a hand-written
backward (the same recurrence run backwards), which is what the model uses:
training through the reference spent 94 % of a step in autograd filling a
zero tensor of the full (B, T, Di, N) size for each step's slice, T times per
layer (bench/mamba_scan.py). A log-depth parallel scan, or a chunked closed
form (segment sums of dt*A), does log2(T) or chunk-length times the loop's
arithmetic: on one CPU thread, prototypes ran 5x and (chunks of 8) 8x slower
than the loop (B 32, T 128, Di 128, N 6). Everything is causal, so right
padding never changes the real positions and no mask is needed.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import UserError
from .layers import EMBEDDING_INIT_STD, CausalDepthwiseConv, RMSNorm


def selective_scan_reference(u, dt, A, b, c, D):
    """The input-dependent linear recurrence of Mamba, one step at a time.

    u, dt (B, T, Di); A (Di, N); b, c (B, T, N); D (Di) -> y (B, T, Di):
        h_t = exp(dt_t * A) * h_{t-1} + dt_t * b_t * u_t      h (B, Di, N)
        y_t = h_t . c_t + D * u_t
    A < 0 and dt > 0, so exp(dt * A) is in (0, 1): the state never blows up.
    """
    decay = torch.exp(dt.unsqueeze(-1) * A)  # (B, T, Di, N)
    drive = (dt * u).unsqueeze(-1) * b.unsqueeze(2)  # (B, T, Di, 1) * (B, T, 1, N) -> (B, T, Di, N)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])  # (B, Di, N)
    ys = []
    for t in range(u.shape[1]):
        h = decay[:, t] * h + drive[:, t]
        ys.append((h @ c[:, t].unsqueeze(-1)).squeeze(-1))  # (B, Di, N) @ (B, N, 1) -> (B, Di)
    return torch.stack(ys, dim=1) + u * D  # (B, T, Di)


def selective_scan(u, dt, A, b, c, D):
    """selective_scan_reference's result and gradients; forward + backward 18x faster
    (one layer, B 32, T 128, one thread: bench/mamba_scan.py)."""
    return _SelectiveScan.apply(u, dt, A, b, c, D)


class _SelectiveScan(torch.autograd.Function):
    """The scan with its backward written out. The state is laid out (N, Di),
    Di innermost, so every broadcast runs over 128 contiguous floats, not 6.

    Backward: with g_t = dL/dh_t (from y_t and from h_{t+1}),
        g_t = c_t * dL/dy_t + exp(dt_{t+1} A) * g_{t+1}     the scan, reversed
    g_t is also dL/d(drive_t), and dL/d(dt_t A) = g_t * h_{t-1} * exp(dt_t A).
    """

    @staticmethod
    def forward(ctx, u, dt, A, b, c, D):
        decay = torch.exp(dt.unsqueeze(2) * A.T)  # (B, T, 1, Di) * (N, Di) -> (B, T, N, Di)
        h = b.unsqueeze(-1) * (dt * u).unsqueeze(2)  # drive: (B, T, N, 1) * (B, T, 1, Di) -> (B, T, N, Di)
        for t in range(1, h.shape[1]):  # in place, drive_t becomes h_t
            h[:, t].addcmul_(decay[:, t], h[:, t - 1])
        ctx.save_for_backward(u, dt, A, b, c, D, decay, h)
        return (c.unsqueeze(-2) @ h).squeeze(-2) + u * D  # (B, T, 1, N) @ (B, T, N, Di) -> (B, T, Di)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):  # gy (B, T, Di)
        u, dt, A, b, c, D, decay, h = ctx.saved_tensors
        g_c = (h @ gy.unsqueeze(-1)).squeeze(-1)  # (B, T, N, Di) @ (B, T, Di, 1) -> (B, T, N)
        g = c.unsqueeze(-1) * gy.unsqueeze(2)  # (B, T, N, Di)
        for t in range(g.shape[1] - 2, -1, -1):  # in place, dL/dh_t
            g[:, t].addcmul_(decay[:, t + 1], g[:, t + 1])
        dtu = dt * u  # (B, T, Di)
        g_dtu = (b.unsqueeze(-2) @ g).squeeze(-2)  # (B, T, 1, N) @ (B, T, N, Di) -> (B, T, Di)
        g_b = (g @ dtu.unsqueeze(-1)).squeeze(-1)  # (B, T, N, Di) @ (B, T, Di, 1) -> (B, T, N)
        g[:, 1:] *= h[:, :-1]  # in place, dL/d(dt_t A); h_{-1} = 0
        g[:, 1:] *= decay[:, 1:]
        g[:, 0] = 0
        g_dt = (g * A.T).sum(2) + g_dtu * u  # (B, T, Di)
        g_A = (g * dt.unsqueeze(2)).sum((0, 1)).T  # (N, Di) -> (Di, N)
        return g_dtu * dt + gy * D, g_dt, g_A, g_b, g_c, (gy * u).sum((0, 1))


def init_dt_bias(bias: torch.Tensor, dt_min: float = 1e-3, dt_max: float = 1e-1):
    """Mamba's init: softplus(bias) log-uniform in [dt_min, dt_max], so the
    first steps neither forget everything nor nothing."""
    dt = torch.exp(torch.rand_like(bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    with torch.no_grad():
        bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus


class MambaBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, n = cfg.d_model, cfg.state_dim
        di = cfg.mamba_expand * d
        self.state_dim = n
        self.dt_rank = math.ceil(d / 16)
        self.norm = RMSNorm(d)
        self.in_proj = nn.Linear(d, 2 * di, bias=False)
        self.conv = CausalDepthwiseConv(di, cfg.mamba_conv)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di)
        init_dt_bias(self.dt_proj.bias)
        # S4D-real init: A = -[1, 2, ..., N] on every channel.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=False)

    def forward(self, x):  # (B, T, d)
        u, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # (B, T, 2 Di) -> 2 x (B, T, Di)
        u = F.silu(self.conv(u))
        n = self.state_dim
        dt, b, c = self.x_proj(u).split([self.dt_rank, n, n], dim=-1)  # (B, T, R), 2 x (B, T, N)
        dt = F.softplus(self.dt_proj(dt))  # (B, T, Di)
        y = selective_scan(u, dt, -torch.exp(self.A_log), b, c, self.D)
        return x + self.out_proj(y * F.silu(z))  # (B, T, d)


class Mamba(nn.Module):
    """ids (B, T) -> hidden states (B, T, d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.state_dim < 1 or cfg.mamba_conv < 1:
            raise UserError(f"{cfg.name}: the mamba family needs state_dim >= 1 and mamba_conv >= 1")
        self.cfg = cfg
        self.token = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.token.weight, std=EMBEDDING_INIT_STD)  # tied MLM output table: see layers.Embedder
        self.layers = nn.ModuleList(MambaBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)

    def token_table(self) -> nn.Embedding:
        return self.token

    def forward(self, ids):
        x = self.token(ids)  # (B, T, d)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
