"""fp-core: what every fp library needs, once.

* :mod:`fp_core.atomic`: crash-safe atomic writes of files and directories;
* :mod:`fp_core.manifest`: the ``manifest.json`` of every stage hand-off directory;
* :mod:`fp_core.weights`: offline lookup of weight files, Hugging Face cache included (never a download);
* :mod:`fp_core.seeds`: independent random streams from ``numpy.random.SeedSequence``;
* :mod:`fp_core.logging`: the ``log(metrics, step)`` protocol;
* :mod:`fp_core.sampling`: the epoch-seeded shuffling sampler that makes resume exact;
* :mod:`fp_core.training`: the accelerate training harness (checkpoints, resume, AMP, checks, progress).
"""

from fp_core.atomic import atomic_output_dir, recover, write_bytes, write_json, write_text
from fp_core.logging import LogFn, null_log, prefixed
from fp_core.manifest import MANIFEST_FILENAME, ManifestError, read_manifest, write_manifest
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed, seed_sequence, torch_generator
from fp_core.weights import WeightsNotFoundError, find_weight_file, hub_cache_dir, hub_file, weights_dir

__version__ = "0.1.0"

__all__ = [
    "EpochPermutation",
    "MANIFEST_FILENAME",
    "LogFn",
    "ManifestError",
    "WeightsNotFoundError",
    "__version__",
    "atomic_output_dir",
    "derive_seed",
    "find_weight_file",
    "hub_cache_dir",
    "hub_file",
    "null_log",
    "prefixed",
    "read_manifest",
    "recover",
    "seed_sequence",
    "torch_generator",
    "weights_dir",
    "write_bytes",
    "write_json",
    "write_manifest",
    "write_text",
]
