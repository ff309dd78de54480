"""Warnings about a run going wrong, each with the figure that fired it and what to try.

Rules of thumb from the GAN literature and practice: D winning outright (D(x) -> 1, D(G(z)) -> 0, or a D
loss near 0) for a sustained window; gradient norms above 100 (exploding) or near 0 (vanishing); the
generated batch much less varied than real data in feature space, or covering few classes (mode
collapse). Each condition warns once, and again only after it has cleared.
"""

from __future__ import annotations

from ganstudio.engine.events import StepStats, TrainWarning

WINDOW = 3  # consecutive reports a condition must hold: one noisy interval is not a trend
EXPLODING, VANISHING = 100.0, 1e-4
MIN_DIVERSITY, MIN_CLASS_SHARE = 0.5, 0.6

HINTS = {
    "d-overpowering": "D wins outright, so G gets little signal: lower optim.lr_d, raise optim.lr_g, "
                      "try the hinge or WGAN-GP loss, or add noise to D's inputs",
    "exploding-gradients": "clip gradients or lower the learning rate; a WGAN-GP or spectrally normalised "
                           "D keeps its gradients bounded",
    "vanishing-gradients": "D saturates and G learns nothing: use the non-saturating (bce) loss instead of "
                           "minimax, or a least-squares/WGAN loss",
    "mode-collapse": "G covers a small part of the data: lower optim.lr_g, more D steps (optim.n_critic), "
                     "or a WGAN-GP loss",
}


class Diagnostics:
    def __init__(self, probability_loss: bool) -> None:
        self.probability_loss = probability_loss
        self.streaks: dict[str, int] = {}
        self.active: set[str] = set()

    def check_stats(self, stats: StepStats) -> list[TrainWarning]:
        conditions = {
            "d-overpowering": (self.probability_loss and stats.d_real > 0.99 and stats.d_fake < 0.01)
            or (self.probability_loss and stats.loss_d < 1e-3),
            "exploding-gradients": max(stats.grad_norm_d, stats.grad_norm_g) > EXPLODING,
            "vanishing-gradients": stats.grad_norm_g < VANISHING,
        }
        figures = {
            "d-overpowering": f"D(x) = {stats.d_real:.3f}, D(G(z)) = {stats.d_fake:.3f}, D loss {stats.loss_d:.2g}",
            "exploding-gradients": f"|∇D| = {stats.grad_norm_d:.3g}, |∇G| = {stats.grad_norm_g:.3g} (> {EXPLODING:g})",
            "vanishing-gradients": f"|∇G| = {stats.grad_norm_g:.2g} (< {VANISHING:g})",
        }
        warnings = []
        for kind, holds in conditions.items():
            self.streaks[kind] = self.streaks.get(kind, 0) + 1 if holds else 0
            if self._fires(kind, self.streaks[kind] >= WINDOW):
                warnings.append(_warning(stats.step, kind, f"{figures[kind]} for {WINDOW} reports"))
        return warnings

    def check_eval(self, step: int, diversity_ratio: float, class_share: float | None) -> list[TrainWarning]:
        low_diversity = diversity_ratio < MIN_DIVERSITY
        few_classes = class_share is not None and class_share < MIN_CLASS_SHARE
        if not self._fires("mode-collapse", low_diversity or few_classes):
            return []
        figure = f"diversity {diversity_ratio:.2f}× that of real data"
        if class_share is not None:
            figure += f", {class_share:.0%} of the classes present"
        return [_warning(step, "mode-collapse", figure)]

    def _fires(self, kind: str, holds: bool) -> bool:
        """True the first time ``kind`` holds; it re-arms once the condition has cleared."""
        if not holds:
            self.active.discard(kind)
            return False
        if kind in self.active:
            return False
        self.active.add(kind)
        return True


def _warning(step: int, kind: str, figure: str) -> TrainWarning:
    return TrainWarning(step, kind, f"{kind.replace('-', ' ')}: {figure}. Try: {HINTS[kind]}")
