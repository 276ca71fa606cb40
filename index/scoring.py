"""A paper's relevance score from its chunks' scores, corrected for the paper's length.

A chunk's dense score is a z-score within its document language, summed over the encoders
(``index.search.score_chunks``). Scoring a paper as its best chunk rewards length: a report of
388 chunks draws the luckiest of 388 tries, so it crowds the top of every query. The paper's
score here is instead how surprising its best chunk is *for a paper of that many chunks*: the
best of ``n`` chance scores is itself a random variable (``P(best < u) = Phi(u)^n`` for
independent standard normal draws), so the best chunk's standardised score ``u`` is mapped to
the standard-normal value with the same tail probability (a Sidak correction, the exact
extreme-value correction for ``n`` draws). A one-chunk record keeps its score; a long report
must beat what its length alone would give. The chunks of one paper are correlated, so ``n``
counts as ``n ** alpha`` effective draws (``LENGTH_EXPONENT``, measured in docs/EVALUATION.md).

The same holds one level up: the best of ``P`` papers that match nothing is high by chance in
a large library, and low in a small one. So the draws are ``n ** alpha * P ** beta`` for a
paper of ``n`` chunks in a library of ``P`` papers (``LIBRARY_EXPONENT``); the ``P`` term is
the same for every paper of a search, so it changes no ranking, only what the score means.

The result is on one scale for every query, language and library size: standard deviations
above what a chance match of that length, in a library of that size, reaches. The relevance
floor (``Settings.min_score``) is set on it: measured on a 56-document and a 3,493-document
library, the best result of an off-topic query stays under 3.0 in both (docs/EVALUATION.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_TINY = 1e-300

# Effective independent draws of a paper of n chunks in a library of P papers:
# n ** LENGTH_EXPONENT * P ** LIBRARY_EXPONENT (docs/EVALUATION.md, paper scores).
LENGTH_EXPONENT = 0.3
LIBRARY_EXPONENT = 0.5
# Correlation of two encoders' z-scores of the same chunk, measured on the full-text and the
# standard libraries: the sum of E encoders' z-scores has the variance E + E (E - 1) rho.
ENCODER_CORRELATION = 0.5


def best_of_n(u: float, n: float) -> float:
    """The standard-normal value as rare as ``u`` being the best of ``n`` standard draws.

    ``n = 1`` returns ``u``; a larger ``n`` returns less (``u`` is easier to reach).
    """
    if n <= 1:
        return u
    sf = 0.5 * math.erfc(u / _SQRT2)  # P(one draw >= u), precise far into the tail
    if sf < 0.5:
        tail = -math.expm1(n * math.log1p(-sf))  # P(best of n >= u)
        return -_NORMAL.inv_cdf(min(max(tail, _TINY), 1 - 1e-16))
    below = math.exp(n * math.log(max(1.0 - sf, _TINY)))  # P(best of n < u)
    return _NORMAL.inv_cdf(min(max(below, _TINY), 1 - 1e-16))


@dataclass(frozen=True)
class PaperScorer:
    """Turns a paper's best summed chunk score and its length into the paper's score.

    Attributes:
        encoders: how many encoders' z-scores a chunk score sums (their sum is standardised).
        correct_length: apply the best-of-n correction (False: the paper is its best chunk,
            standardised; the old ranking, kept for comparison).
        papers: papers in the library (the chance of the best of them).
        alpha: ``LENGTH_EXPONENT``; beta: ``LIBRARY_EXPONENT``.
    """

    encoders: int = 1
    correct_length: bool = True
    papers: int = 1
    alpha: float = LENGTH_EXPONENT
    beta: float = LIBRARY_EXPONENT
    rho: float = ENCODER_CORRELATION

    @functools.cached_property
    def scale(self) -> float:
        """Standard deviation of a chance chunk's summed score (kept: every chunk asks)."""
        e = max(self.encoders, 1)
        return math.sqrt(e + e * (e - 1) * self.rho)

    def chunk(self, summed: float) -> float:
        """A chunk's summed z-score on the standard scale (one standard deviation = 1)."""
        return summed / self.scale

    @functools.cached_property
    def library_draws(self) -> float:
        """The library's share of a paper's draws, ``P ** beta`` (kept: every paper asks)."""
        return float(max(self.papers, 1) ** self.beta)

    def paper(self, best: float, n_chunks: int) -> float:
        """The paper's score from its best chunk's summed z-score and its number of chunks."""
        u = self.chunk(best)
        draws = self.library_draws
        if self.correct_length:
            draws *= max(n_chunks, 1) ** self.alpha
        return best_of_n(u, draws)
