"""Diagnostics of coordinate networks as functions of their inputs (issue 15), one job per module:

- ``linearity``: departure from linear interpolation between input pixel centres;
- ``jacobian``: input-output Jacobian norm (autograd or finite differences) and ReLU regions;
- ``spectra``: radially averaged power spectra in cycles per input pixel;
- ``ntk``: the empirical neural tangent kernel and its eigenvalues;
- ``plots``: the figures, from the numbers;
- ``run``: all of them on an image (each method) or a saved field -> a folder of PNGs + JSON.
"""

from coordsr.analysis.run import AnalysisConfig, Subject, analyze, field_subject, image_subjects, measure

__all__ = ["AnalysisConfig", "Subject", "analyze", "field_subject", "image_subjects", "measure"]
