"""mamba_kws: train, quantize, split and measure Mamba keyword spotters for microcontrollers."""

__version__ = "0.1.0"
