"""Face recognition as in QDGS (AAAI 2024): iResNet / IR backbones, ArcFace / CosFace / AdaFace margins,
readers of the published data formats, verification on ``.bin`` sets and RFW fairness.

The one obvious path::

    from fp_recognition import build_backbone, load_bins, evaluate_bins, load_rfw, evaluate_rfw

    model = build_backbone("iresnet50")
    report = evaluate_bins(model, load_bins("data/faces_webface_112x112"), device="cuda")
    fairness = evaluate_rfw(model, load_rfw("data/RFW"), device="cuda").summary

Training (margin losses on the fp-core harness, pretrain -> train with the backbone only) is
:mod:`fp_recognition.train`. See docs/recognition.md.
"""

from fp_recognition.backbones import (
    BACKBONES,
    PUBLISHED_PARAMETER_COUNTS,
    BasicBlockIR,
    IBasicBlock,
    IResNet,
    IRNet,
    build_backbone,
    count_parameters,
)
from fp_recognition.data import (
    RFW_GROUPS,
    VERIFICATION_SETS,
    DataFormatError,
    FaceAugment,
    ImageFolderDataset,
    IRHeader,
    LazyImages,
    RecordDataset,
    RecordReader,
    RecordWriter,
    RFWPairs,
    VerificationBin,
    encode_jpeg,
    load_bin,
    load_bins,
    load_rfw,
    load_rfw_pairs,
    write_bin,
    write_record_dataset,
)
from fp_recognition.evaluate import (
    BinResult,
    FairnessSummary,
    ImageEmbeddings,
    RFWResult,
    VerificationReport,
    embed_images,
    evaluate_bin,
    evaluate_bins,
    evaluate_pairs,
    evaluate_rfw,
    fairness_summary,
)
from fp_recognition.margins import (
    AdaFaceMargin,
    ArcFaceMargin,
    CombinedMargin,
    CosFaceMargin,
    NormalisedLinear,
)

__version__ = "0.1.0"

__all__: list[str] = [
    "BACKBONES",
    "PUBLISHED_PARAMETER_COUNTS",
    "RFW_GROUPS",
    "VERIFICATION_SETS",
    "AdaFaceMargin",
    "ArcFaceMargin",
    "BasicBlockIR",
    "BinResult",
    "CombinedMargin",
    "CosFaceMargin",
    "DataFormatError",
    "FaceAugment",
    "FairnessSummary",
    "IBasicBlock",
    "IRHeader",
    "IRNet",
    "IResNet",
    "ImageEmbeddings",
    "ImageFolderDataset",
    "LazyImages",
    "NormalisedLinear",
    "RFWPairs",
    "RFWResult",
    "RecordDataset",
    "RecordReader",
    "RecordWriter",
    "VerificationBin",
    "VerificationReport",
    "__version__",
    "build_backbone",
    "count_parameters",
    "embed_images",
    "encode_jpeg",
    "evaluate_bin",
    "evaluate_bins",
    "evaluate_pairs",
    "evaluate_rfw",
    "fairness_summary",
    "load_bin",
    "load_bins",
    "load_rfw",
    "load_rfw_pairs",
    "write_bin",
    "write_record_dataset",
]
