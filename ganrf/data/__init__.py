"""Training data: where images come from (:mod:`~ganrf.data.sources`: MNIST, CelebA, any
class-folder tree, a synthetic set) and how they are batched (:mod:`~ganrf.data.images`).

Everything a caller needs is importable from here.
"""

from ganrf.data.images import (
    TrainingImages,
    check_data,
    epoch_permutation,
    load_training_images,
    steps_per_epoch,
    to_float,
)
from ganrf.data.sources import (
    IMAGE_SUFFIXES,
    DataError,
    ImageFiles,
    celeba_dataset,
    image_folder_dataset,
    load_mnist,
    make_synthetic,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "DataError",
    "ImageFiles",
    "TrainingImages",
    "celeba_dataset",
    "check_data",
    "epoch_permutation",
    "image_folder_dataset",
    "load_mnist",
    "load_training_images",
    "make_synthetic",
    "steps_per_epoch",
    "to_float",
]
