"""Where every random stream of a run starts: ``train.seed`` plus a named offset per stream.

Each stream has its own generator so that one never shifts another: a sample grid or an evaluation
draws nothing from the training noise, and turning DiffAugment on does not change the weights' init.
The offsets are part of what a run means: changing one changes every run's numbers.
"""

from __future__ import annotations

NOISE = 1    # z for the training steps, a VAE's ε, a cgan's fake labels
PENALTY = 2  # WGAN-GP's interpolation points
FIXED = 3    # the fixed noise of the sample grids (drawn on the CPU, so every device shows the same grid)
EVAL = 4     # the evaluation noise: the same at every step and in `ganstudio eval`
AUGMENT = 5  # DiffAugment and instance noise
