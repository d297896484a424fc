"""QDGS on faces (issue 13): identities from an archive, latent-walk variants, the identity-folder export, and
a StyleGAN2 generator with safe loading.

* :mod:`fp_qdgs.faces.identities`: 3 x 3 chunks over the first two measures, K-means (``k = ceil(n / 2)``) in
  each chunk, one identity per cluster;
* :mod:`fp_qdgs.faces.variants`: yaw / smile directions by least squares and the 3 x 3 lattice of 9 variants;
* :mod:`fp_qdgs.faces.folder`: ``<root>/<identity>/<n>.jpg`` with a ``"qdgs-identities"`` manifest (the layout
  of ``fp_recognition.data.folder.ImageFolderDataset``), with an optional face-alignment hook;
* :mod:`fp_qdgs.faces.stylegan2`, :mod:`fp_qdgs.faces.stylegan2_io`, :mod:`fp_qdgs.faces.qspace`: a StyleGAN2
  generator with NVIDIA's state-dict names, safetensors / weights-only loading, the guarded pickle
  conversion, and QDGS's standardised q-space;
* :mod:`fp_qdgs.faces.generator`: the embedded default face generator, a VAE on the 64 x 64 synthetic faces.
"""

from fp_qdgs.faces.folder import (
    IDENTITIES_KIND,
    IdentityFolder,
    identity_name,
    read_identity_folder,
    write_identity_folder,
)
from fp_qdgs.faces.generator import (
    FaceDecoderGenerator,
    FaceVAE,
    FaceVAEConfig,
    load_face_vae,
    save_face_vae,
    train_face_vae,
)
from fp_qdgs.faces.identities import DEFAULT_EDGES, chunk_labels, identity_labels, num_chunks
from fp_qdgs.faces.qspace import QSpaceGenerator, q_to_w, w_statistics, w_to_q
from fp_qdgs.faces.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from fp_qdgs.faces.stylegan2_io import (
    UntrustedPickleError,
    convert_network_pickle,
    load_stylegan2,
    save_stylegan2,
)
from fp_qdgs.faces.variants import NUM_VARIANTS, fit_directions, lattice, lattice_offsets

__all__ = [
    "DEFAULT_EDGES",
    "FaceDecoderGenerator",
    "FaceVAE",
    "FaceVAEConfig",
    "IDENTITIES_KIND",
    "NUM_VARIANTS",
    "QSpaceGenerator",
    "IdentityFolder",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "UntrustedPickleError",
    "chunk_labels",
    "convert_network_pickle",
    "fit_directions",
    "identity_labels",
    "identity_name",
    "lattice",
    "lattice_offsets",
    "load_face_vae",
    "load_stylegan2",
    "num_chunks",
    "q_to_w",
    "read_identity_folder",
    "save_face_vae",
    "save_stylegan2",
    "train_face_vae",
    "w_statistics",
    "w_to_q",
    "write_identity_folder",
]
