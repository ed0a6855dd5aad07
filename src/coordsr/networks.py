"""The MLP of a coordinate field and its activations, each carrying its own initialisation.

A coordinate network is only as good as its initialisation: a sine network with PyTorch's
default init is noise, a ReLU network with SIREN's init is dead. So the init lives with the
activation: an activation module may define ``init_linear(linear, is_first, is_last)``, and
``MLP`` calls it on every ``nn.Linear`` it builds, with the activation that follows that layer
(the last layer, which has no activation after it, is given the hidden activation with
``is_last=True``). ``nn.ReLU`` and ``nn.Tanh`` are PyTorch's own classes; their inits are in
``DEFAULT_INITS``.

Activations are passed as classes or zero-argument factories (``functools.partial(Sine,
w0=60.)``), never as strings; ``ACTIVATIONS`` maps the CLI's words to classes.

>>> net = MLP(2, 3, hidden=16, layers=2, activation=Sine)
>>> net(torch.zeros(4, 5, 2)).shape
torch.Size([4, 5, 3])
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from coordsr.precision import relu_

ActivationFactory = Callable[[], nn.Module]


class Sine(nn.Module):
    """sin(w0 x), SIREN's activation (Sitzmann et al. 2020).

    Init (``init_linear``): first layer U(-1/n, 1/n), later layers
    U(-sqrt(6/n) / w0, sqrt(6/n) / w0), n the layer's fan-in; biases keep PyTorch's default
    U(-1/sqrt(n), 1/sqrt(n)), as in the reference code. With it w0 W x is about N(0, 1) in every
    hidden layer (the bias adds a phase of std w0 / sqrt(3 n), about 1.1 at n = 256, which the
    paper's analysis leaves out) and every activation is arcsine-distributed on [-1, 1].

    Args:
        w0: frequency factor; the paper uses 30 for the first and the hidden layers alike.
    """

    def __init__(self, w0: float = 30.0):
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)

    @torch.no_grad()
    def init_linear(self, linear: nn.Linear, is_first: bool, is_last: bool = False) -> None:
        n = linear.in_features
        # The last layer takes SIREN's hidden init too (reference code, outermost_linear=True).
        bound = 1.0 / n if is_first else math.sqrt(6.0 / n) / self.w0
        linear.weight.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class Gabor(nn.Module):
    """Real Gabor wavelet cos(omega0 x) exp(-(s0 x)^2), WIRE's activation (Saragadam et al. 2023).

    This is WIRE's real-valued variant on a single pre-activation; the paper's main results use
    the complex wavelet exp(j omega0 x - |s0 x|^2) with complex weights, which doubles the cost
    of every layer. Init: WIRE's code keeps PyTorch's default ``nn.Linear`` init in every layer
    and so do we (no ``init_linear``); its image-fitting defaults are omega0 = 20, s0 = 10.

    Args:
        omega0: frequency of the oscillation.
        s0: inverse width of the Gaussian window.
    """

    def __init__(self, omega0: float = 20.0, s0: float = 10.0):
        super().__init__()
        self.omega0, self.s0 = float(omega0), float(s0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GaborFunction.apply(x, self.omega0, self.s0)

    def extra_repr(self) -> str:
        return f"omega0={self.omega0}, s0={self.s0}"


# Below these exponents exp's results are not normal numbers of the dtype, and PyTorch's CPU exp
# leaves its vector path: 45-200x slower per value (measured, float32, one thread), for values
# (under 1.6e-38) that vanish in the next layer's sums anyway. e^-87 is just above float32's
# (and bfloat16's) smallest normal number, 1.18e-38; log(tiny) itself rounds to a subnormal result.
_EXP_FLOOR = {torch.float32: -87.0, torch.bfloat16: -87.0}


def floored_exp(arg: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    """exp(arg), with arg held at or above the floor of its dtype (``_EXP_FLOOR``): for activations
    whose exponent runs far below zero (Gabor and Gaussian windows, CPPN art's gauss units).
    ``inplace``: overwrite ``arg`` (no autograd through it)."""
    floor = _EXP_FLOOR.get(arg.dtype)
    if inplace:
        return (arg if floor is None else arg.clamp_(min=floor)).exp_()
    return (arg if floor is None else arg.clamp(min=floor)).exp()


def _gabor_window(x: torch.Tensor, s0: float) -> torch.Tensor:
    """exp(-(s0 x)^2), with the formula's own roundings and :func:`floored_exp`'s floor."""
    return floored_exp(torch.mul(x, s0).square_().neg_(), inplace=True)


class _GaborFunction(torch.autograd.Function):
    """cos(omega0 x) exp(-(s0 x)^2) and its derivative, a few in-place passes each way.

    Written out because autograd's chain of seven elementwise ops (and about twelve backwards)
    made those passes 70% of a WIRE training step, against 27% for its matrix products."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, omega0: float, s0: float) -> torch.Tensor:
        window = _gabor_window(x, s0)
        phase = x * omega0
        out = torch.cos(phase).mul_(window)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x, window, out, phase.sin_())
            ctx.omega0, ctx.s0 = omega0, s0
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, window, out, sine = ctx.saved_tensors
        # d/dx = -omega0 sin(omega0 x) window - 2 s0^2 x out
        slope = torch.mul(out, x).mul_(-2 * ctx.s0 * ctx.s0).addcmul_(window, sine, value=-ctx.omega0)
        return slope.mul_(grad), None, None


class Gaussian(nn.Module):
    """exp(-x^2 / (2 sigma^2)) (Ramasinghe and Lucey 2022, "Beyond Periodicity").

    Init: PyTorch's default ``nn.Linear`` init; the paper's point is that, unlike sine, this
    activation needs no special initialisation.

    Args:
        sigma: width of the bump; smaller sigma lets the network fit higher frequencies.
    """

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return floored_exp(-0.5 * (x / self.sigma).square())

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


@torch.no_grad()
def _init_relu(linear: nn.Linear, is_first: bool, is_last: bool = False) -> None:
    # He (Kaiming) uniform keeps the activations' second moment constant through ReLU layers;
    # biases keep PyTorch's default, which spreads the first layer's kinks over the image
    # (zero biases would put every kink through the origin).
    nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")


@torch.no_grad()
def _init_tanh(linear: nn.Linear, is_first: bool, is_last: bool = False) -> None:
    nn.init.xavier_uniform_(linear.weight, gain=nn.init.calculate_gain("tanh"))


# Inits for activations we do not own (PyTorch's classes cannot carry an ``init_linear``).
DEFAULT_INITS: dict[type[nn.Module], Callable[..., None]] = {
    nn.ReLU: _init_relu,
    nn.Tanh: _init_tanh,
}

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sine": Sine,
    "gabor": Gabor,
    "gauss": Gaussian,
}


def activation_class(name: str) -> type[nn.Module]:
    """The activation class called ``name`` (a key of ACTIVATIONS); ValueError otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None


def init_linear(linear: nn.Linear, activation: nn.Module, is_first: bool,
                is_last: bool = False) -> None:
    """Initialise ``linear`` for the ``activation`` that follows it.

    The activation's own ``init_linear`` if it has one, else ``DEFAULT_INITS`` for its class,
    else PyTorch's default init is left as it is.
    """
    hook = getattr(activation, "init_linear", None)
    if hook is None:
        hook = DEFAULT_INITS.get(type(activation))
    if hook is not None:
        hook(linear, is_first=is_first, is_last=is_last)


class MLP(nn.Module):
    """``layers`` hidden layers (Linear + activation) of width ``hidden``, then a Linear.

    Args:
        in_dim: input width (the encoding's ``out_dim``).
        out_dim: output width (the image's channels).
        hidden: width of each hidden layer.
        layers: number of hidden layers; 0 gives a single linear map.
        activation: class or zero-argument factory of the hidden activation, e.g. ``nn.ReLU``
            or ``functools.partial(Sine, w0=30.)``; one instance per layer.
        out_activation: optional class or factory applied to the output (e.g. ``nn.Sigmoid``).

    Without autograd, inputs of more than ``inference_rows`` rows are evaluated in blocks of
    that many rows, so each block's activations stay in the CPU's L2 cache: on a 2-core CPU
    this renders 2-3x faster than one large matrix product per layer.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 3,
                 activation: ActivationFactory = nn.ReLU,
                 out_activation: ActivationFactory | None = None):
        super().__init__()
        if isinstance(activation, str) or isinstance(out_activation, str):
            raise TypeError("pass activation classes, not names: look names up in ACTIVATIONS")
        if in_dim < 1 or out_dim < 1 or hidden < 1 or layers < 0:
            raise ValueError(f"need in_dim, out_dim, hidden >= 1 and layers >= 0; got "
                             f"{in_dim}, {out_dim}, {hidden}, {layers}")
        self.in_dim, self.out_dim, self.hidden, self.layers = in_dim, out_dim, hidden, layers
        modules: list[nn.Module] = []
        width = in_dim
        act = None
        for i in range(layers):
            linear, act = nn.Linear(width, hidden), activation()
            init_linear(linear, act, is_first=i == 0)
            modules += [linear, act]
            width = hidden
        last = nn.Linear(width, out_dim)
        if act is not None:
            init_linear(last, act, is_first=False, is_last=True)
        modules.append(last)
        if out_activation is not None:
            modules.append(out_activation())
        self.net = nn.Sequential(*modules)
        # About 2 MiB of float32 activations per block: 8192 rows at hidden = 64.
        self.inference_rows = max(1024, 2**19 // hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in_dim) -> (..., out_dim)
        rows = self.inference_rows
        mixed = torch.is_autocast_enabled(x.device.type)
        if torch.is_grad_enabled() or x.shape[:-1].numel() <= rows:
            return self._mixed(x) if mixed else self.net(x)
        flat = x.reshape(-1, x.shape[-1])  # (N, in_dim)
        first = self._infer(flat[:rows])
        out = first.new_empty(flat.shape[0], first.shape[-1])
        out[:rows] = first
        for start in range(rows, flat.shape[0], rows):
            out[start:start + rows] = self._infer(flat[start:start + rows])
        return out.view(*x.shape[:-1], out.shape[-1])

    def _float32_layers(self) -> set[int]:
        """Indices in ``net`` of the Linear layers that autocast must leave in float32: the last
        (the colours: bfloat16's 8-bit mantissa would round them to about one 8-bit level) and a
        first layer on raw coordinates (a position rounded to 3 digits is off by a pixel at
        1024 pixels, and sine networks multiply it by w0). Both are the cheapest layers."""
        linears = [i for i, m in enumerate(self.net) if isinstance(m, nn.Linear)]
        return {linears[-1]} | ({linears[0]} if self.in_dim <= 4 else set())

    def _mixed(self, h: torch.Tensor) -> torch.Tensor:
        """Forward under autocast, with :meth:`_float32_layers` in float32 (autograd allowed)."""
        keep = self._float32_layers()
        for i, m in enumerate(self.net):
            if i in keep:
                with torch.autocast(h.device.type, enabled=False):
                    h = m(h.float())
            else:
                h = m(h)
        return h

    def _infer(self, h: torch.Tensor) -> torch.Tensor:
        """One block without autograd: fused bias-add and in-place ReLU save an allocation and a
        pass over memory per layer, which is about half the time of a narrow MLP on a CPU."""
        keep = self._float32_layers() if torch.is_autocast_enabled(h.device.type) else set()
        for i, m in enumerate(self.net):
            if i in keep:
                with torch.autocast(h.device.type, enabled=False):
                    h = torch.addmm(m.bias, h.float(), m.weight.t()) if m.bias is not None else h.float() @ m.weight.t()
            elif isinstance(m, nn.Linear):
                h = torch.addmm(m.bias, h, m.weight.t()) if m.bias is not None else h @ m.weight.t()
            elif isinstance(m, nn.ReLU):
                h = relu_(h)
            elif isinstance(m, Sine):
                h = h.mul_(m.w0).sin_()
            else:
                h = m(h)
        return h
