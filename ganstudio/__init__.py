"""ganstudio: a training studio for GANs, autoencoders and VAEs on PyTorch."""

__version__ = "0.1.0"
