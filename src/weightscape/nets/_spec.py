"""Architecture specs of fully connected nets (one member) and of batched ensembles."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError, check_choice, check_positive

__all__ = ["ACTIVATIONS", "INITS", "MLPSpec"]

ACTIVATIONS = ("relu", "tanh", "leaky_relu", "linear")
#: Built-in initialisations; more can be added with :func:`weightscape.nets.register_init`.
INITS = ("geiger2019", "normal", "torch")


@dataclass(frozen=True)
class MLPSpec:
    """Architecture of one fully connected net.

    ``depth`` hidden layers (0 = a linear model ``f = W x (+ b)``), each ``Linear -> activation``,
    then a linear read-out of ``out_dim`` outputs (no activation), standard PyTorch parametrisation.

    Args:
        d_in: input dimension d.
        widths: hidden widths ``(h_1, ..., h_L)``; ``len(widths)`` is the depth L. Use
            :meth:`uniform` for equal widths.
        out_dim: number of outputs (1 for the binary studies).
        bias: whether every layer (read-out included) has a bias.
        activation: one of ``relu``, ``tanh``, ``leaky_relu``, ``linear``.
        leaky_slope: negative-side slope of ``leaky_relu``.
        fan_in_scale: if True, each hidden activation is divided by √(fan-in of its layer),
            ``a = act(z) / sqrt(n_prev)`` (the max-ent study's convention).
        init: initialisation scheme name (see :data:`INITS` and :func:`register_init`).
        init_gain: scale of the ``normal`` init (std = gain / √fan-in).
        output_norm: norm of each read-out row in the ``geiger2019`` init (κ in the paper).
    """

    d_in: int
    widths: tuple[int, ...] = ()
    out_dim: int = 1
    bias: bool = True
    activation: str = "relu"
    leaky_slope: float = 0.01
    fan_in_scale: bool = False
    init: str = "geiger2019"
    init_gain: float = 1.0
    output_norm: float = 1.0
    # filled by __post_init__: layer sizes (d_in, h_1, ..., h_L, out_dim)
    sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_positive("d_in", self.d_in, integer=True)
        widths = tuple(self.widths) if not isinstance(self.widths, int) else (self.widths,)
        for w in widths:
            check_positive("width", w, integer=True)
        object.__setattr__(self, "widths", widths)
        check_positive("out_dim", self.out_dim, integer=True)
        check_choice("activation", self.activation, ACTIVATIONS)
        if not isinstance(self.bias, bool):
            raise ConfigError(f"bias={self.bias!r} must be true or false")
        check_positive("leaky_slope", self.leaky_slope, allow_zero=True)
        check_positive("init_gain", self.init_gain)
        check_positive("output_norm", self.output_norm)
        from ._init import available_inits

        check_choice("init", self.init, available_inits())
        object.__setattr__(self, "sizes", (self.d_in, *widths, self.out_dim))

    @classmethod
    def uniform(cls, d_in: int, depth: int, width: int, **kw) -> MLPSpec:
        """A net of ``depth`` hidden layers of equal ``width``."""
        check_positive("depth", depth, allow_zero=True, integer=True)
        return cls(d_in=d_in, widths=(width,) * depth, **kw)

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def n_weights(self) -> int:
        """N as the jamming spec defines it: the number of weights, biases excluded."""
        s = self.sizes
        return sum(s[i] * s[i + 1] for i in range(len(s) - 1))

    @property
    def n_biases(self) -> int:
        return sum(self.sizes[1:]) if self.bias else 0

    @property
    def n_params(self) -> int:
        """Number of trainable parameters (weights + biases)."""
        return self.n_weights + self.n_biases

    @property
    def n_hidden_units(self) -> int:
        return sum(self.widths)

    def shared_fields(self) -> tuple:
        """The fields every member of one ensemble must share."""
        return (
            self.depth,
            self.out_dim,
            self.bias,
            self.activation,
            self.leaky_slope,
            self.fan_in_scale,
        )
