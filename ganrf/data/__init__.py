"""Training data: where images come from (:mod:`~ganrf.data.sources`: MNIST, CelebA, any
class-folder tree, a synthetic set; :mod:`~ganrf.data.photo`: crops of shipped photographs) and how they are batched (:mod:`~ganrf.data.images`).

Everything a caller needs is importable from here.
"""

from ganrf.data.images import (
    SEEDED_DATASETS,
    TrainingImages,
    check_data,
    epoch_permutation,
    load_training_images,
    steps_per_epoch,
    to_float,
)
from ganrf.data.photo import PHOTOS, photo_crops
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
    "PHOTOS",
    "SEEDED_DATASETS",
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
    "photo_crops",
    "steps_per_epoch",
    "to_float",
]
