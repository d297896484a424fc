"""Readers and writers of face-recognition data in their published formats, and the training augmentation.

* training sets: insightface ``train.rec`` / ``train.idx`` / ``property`` (:class:`RecordDataset`,
  :func:`write_record_dataset`), image folders incl. AdaFace's ``imgs/`` layout (:class:`ImageFolderDataset`);
* verification sets: insightface ``.bin`` pickles, read with a restricted unpickler (:func:`load_bin`,
  :func:`write_bin`); RFW pairs per group (:func:`load_rfw_pairs`);
* :class:`FaceAugment`: AdaFace's flip / crop / low-resolution / photometric recipe.

Every bad input raises :class:`DataFormatError` naming the file and the record, line or image.
"""

from fp_recognition.data.augment import FaceAugment
from fp_recognition.data.errors import DataFormatError
from fp_recognition.data.folder import ImageFolderDataset, identity_root
from fp_recognition.data.images import (
    IMAGE_EXTENSIONS,
    ImageLike,
    LazyImages,
    decode_image,
    encode_jpeg,
    image_to_tensor,
    load_image_file,
    normalise,
)
from fp_recognition.data.record_dataset import RecordDataset, read_property, write_record_dataset
from fp_recognition.data.recordio import (
    RECORDIO_MAGIC,
    IRHeader,
    RecordReader,
    RecordWriter,
    frame_record,
    pack_record,
    unpack_record,
)
from fp_recognition.data.rfw import (
    RFW_GROUPS,
    RFWPairs,
    load_rfw,
    load_rfw_pairs,
    rfw_image_path,
    rfw_pairs_path,
)
from fp_recognition.data.verification_bin import (
    VERIFICATION_SETS,
    VerificationBin,
    load_bin,
    load_bins,
    write_bin,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "RECORDIO_MAGIC",
    "RFW_GROUPS",
    "VERIFICATION_SETS",
    "DataFormatError",
    "FaceAugment",
    "IRHeader",
    "ImageFolderDataset",
    "ImageLike",
    "LazyImages",
    "RFWPairs",
    "RecordDataset",
    "RecordReader",
    "RecordWriter",
    "VerificationBin",
    "decode_image",
    "encode_jpeg",
    "frame_record",
    "identity_root",
    "image_to_tensor",
    "load_bin",
    "load_bins",
    "load_image_file",
    "load_rfw",
    "load_rfw_pairs",
    "normalise",
    "pack_record",
    "read_property",
    "rfw_image_path",
    "rfw_pairs_path",
    "unpack_record",
    "write_bin",
    "write_record_dataset",
]
