"""convlstm_grid's network: a ConvLSTM or PredRNN encoder (core.convlstm) and the rollout
that feeds each predicted frame back in, with PredRNN-V2's decoupling loss and the width
that gives PredRNN about the ConvLSTM's parameter count."""

from __future__ import annotations

import torch
from torch import nn

from core.convlstm import ConvLSTM, PredRNN


class Forecaster(nn.Module):
    """A ConvLSTM or PredRNN encoder, then an autoregressive rollout of `horizon` frames.

        frames (B, T, C, H, W) ─ fold patches ─> (B, T, C p², H/p, W/p) ─ RNN ─ state
        repeat horizon times:
            frame' = frame + head(h_top)         the change from the last frame
            state  = RNN.step(frame', state)     the prediction is fed back

    `hidden_size`: a list, one per layer, for ConvLSTM; PredRNN takes the list's length
    as its layer count and `predrnn_width` as every layer's width. With `decouple`, a
    1x1 convolution (PredRNN-V2's W_decouple) maps what each step adds to C and to M
    before the decoupling loss compares them.
    """

    def __init__(self, channels: int, hidden_size: list[int], kernel_size: int,
                 head_kernel: int, patch: int, cell: str = "convlstm",
                 predrnn_width: int = 0, decouple: bool = False) -> None:
        super().__init__()
        self.patch = patch
        folded = channels * patch**2
        if cell == "convlstm":
            self.rnn = ConvLSTM(folded, hidden_size, kernel_size,
                                num_layers=len(hidden_size), batch_first=True)
            top = hidden_size[-1]
        else:
            self.rnn = PredRNN(folded, predrnn_width, kernel_size,
                               num_layers=len(hidden_size), batch_first=True)
            top = predrnn_width
        self.head = nn.Conv2d(top, folded, head_kernel, padding="same")
        self.decouple = nn.Conv2d(top, top, 1, bias=False) if decouple else None

    def forward(self, x: torch.Tensor, horizon: int, decoupling: bool = False,
                hide: float = 0.0) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C, H, W) -> forecast (B, horizon, C, H, W); with `decoupling` (a
        PredRNN built with `decouple`), (forecast, decoupling loss). `hide`: the chance
        that each input frame after the first is replaced by the model's own forecast of
        it (PredRNN-V2's reverse scheduled sampling, for training)."""
        increments = [] if decoupling else None             # each layer's (ΔC, ΔM), each step
        extra = {} if increments is None else {"increments": increments}
        b, t = x.shape[:2]
        folded = nn.functional.pixel_unshuffle(x.flatten(0, 1), self.patch)
        folded = folded.view(b, t, *folded.shape[1:])       # (B, T, C p², H/p, W/p)
        if hide > 0:
            frame = folded[:, 0]
            top, state = self.rnn.step(frame, None, **extra)
            for s in range(1, t):
                hidden = torch.rand(b, 1, 1, 1, device=x.device) < hide  # per sequence
                frame = torch.where(hidden, frame + self.head(top), folded[:, s])
                top, state = self.rnn.step(frame, state, **extra)
        else:
            top, state = self.rnn(folded, **extra)
            top, frame = top[:, -1], folded[:, -1]          # the top layer's last h
        out = []
        for k in range(horizon):
            frame = frame + self.head(top)
            out.append(frame)
            if k + 1 < horizon:
                top, state = self.rnn.step(frame, state, **extra)
        out = torch.stack(out, dim=1)                       # (B, horizon, C p², H/p, W/p)
        forecast = nn.functional.pixel_shuffle(out.flatten(0, 1), self.patch).view(
            b, horizon, *x.shape[2:])
        if decoupling:
            return forecast, decoupling_loss(self.decouple, increments)
        return forecast


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matching_width(channels: int, hidden_size: list[int], kernel_size: int,
                   head_kernel: int, patch: int) -> int:
    """The PredRNN width whose Forecaster has the parameter count nearest the ConvLSTM
    Forecaster's of `hidden_size`: an ST-LSTM layer holds about 9/4 the weights of a
    ConvLSTM layer as wide, so the fair rival is narrower."""
    target = parameter_count(Forecaster(channels, hidden_size, kernel_size, head_kernel,
                                        patch))
    return min(range(1, 2 * max(hidden_size) + 1), key=lambda width: abs(target - (
        parameter_count(Forecaster(channels, hidden_size, kernel_size, head_kernel, patch,
                                   "predrnn", width)))))


def decoupling_loss(adapter: nn.Conv2d, increments: list) -> torch.Tensor:
    """PredRNN-V2: the mean over layers, steps, batch and channels of
    |cos(W_decouple * ΔC, W_decouple * ΔM)|, each channel's cosine taken over the grid,
    so that C and M learn to hold different things."""
    delta_c = torch.stack([adapter(dc) for dc, _ in increments]).flatten(-2)  # (S, B, Hd, HW)
    delta_m = torch.stack([adapter(dm) for _, dm in increments]).flatten(-2)
    return nn.functional.cosine_similarity(delta_c, delta_m, dim=-1).abs().mean()


def predict(model: Forecaster, x: torch.Tensor, horizon: int, device: torch.device,
            batch_size: int = 128) -> torch.Tensor:
    """The model's forecasts for inputs x (N, T, C, H, W), in batches, on the CPU."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size].to(device), horizon).cpu()
                          for i in range(0, len(x), batch_size)])

