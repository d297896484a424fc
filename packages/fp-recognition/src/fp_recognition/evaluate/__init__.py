"""Evaluation: flip-test embedding, 10-fold verification on ``.bin`` sets, RFW per-group fairness."""

from fp_recognition.evaluate.embed import ImageEmbeddings, embed_images
from fp_recognition.evaluate.rfw import FairnessSummary, RFWResult, evaluate_rfw, fairness_summary
from fp_recognition.evaluate.verification import (
    BinResult,
    VerificationReport,
    evaluate_bin,
    evaluate_bins,
    evaluate_pairs,
    tar_resolvable,
)

__all__ = [
    "BinResult",
    "FairnessSummary",
    "ImageEmbeddings",
    "RFWResult",
    "VerificationReport",
    "embed_images",
    "evaluate_bin",
    "evaluate_bins",
    "evaluate_pairs",
    "evaluate_rfw",
    "fairness_summary",
    "tar_resolvable",
]
