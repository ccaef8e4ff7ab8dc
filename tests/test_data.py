import struct
from pathlib import Path

import pytest
import torch

from ganrf.config import DataConfig
from ganrf.data import (
    DataError,
    check_data,
    epoch_permutation,
    load_mnist,
    load_training_images,
    make_synthetic,
)


def _idx(path, data: bytes, dims, magic):
    path.write_bytes(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data)


def fake_mnist(root, n=32, size=28, truncate=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = torch.randint(0, 256, (n, size, size), dtype=torch.uint8).numpy().tobytes()
    if truncate:
        imgs = imgs[: len(imgs) // 2]
    labels = torch.randint(0, 10, (n,), dtype=torch.uint8).numpy().tobytes()
    for split in ("train", "t10k"):
        _idx(raw / f"{split}-images-idx3-ubyte", imgs, (n, size, size), 0x803)
        _idx(raw / f"{split}-labels-idx1-ubyte", labels, (n,), 0x801)


def test_mnist_through_torchvision_scaled(tmp_path):
    fake_mnist(tmp_path)
    images, labels = load_mnist(str(tmp_path), train=True, download=False)
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.uint8 and len(labels) == 32
    data = load_training_images(DataConfig(root=str(tmp_path), download=False), torch.device("cpu"))
    batch = next(data.batches(seed=0, epoch=0, start=0, batch_size=8, device=torch.device("cpu")))
    assert batch.shape == (8, 1, 28, 28) and batch.min() >= -1 and batch.max() <= 1


def test_mnist_missing_no_download(tmp_path):
    with pytest.raises(DataError, match="not in .* and download is off"):
        load_mnist(str(tmp_path), download=False)


def test_mnist_missing_no_network_leaves_nothing(tmp_path, monkeypatch):
    import os

    import torchvision

    def offline(self):  # as torchvision does: make the raw folder, then every mirror fails
        os.makedirs(self.raw_folder, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = tmp_path / "new" / "nested" / "data"
    with pytest.raises(DataError, match="could not be downloaded") as err:
        load_mnist(str(root), download=True)
    assert "nothing was written" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "new").exists()  # not the root, nor any parent made for it
    assert list((tmp_path / "tmp").iterdir()) == []  # the staging folder is gone too


def test_mnist_download_lands_whole_in_the_root(tmp_path, monkeypatch):
    import torchvision

    def fetched(self):  # what a successful download leaves in the (staging) raw folder
        fake_mnist(Path(self.root), n=16)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fetched)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = tmp_path / "new" / "data"
    images, labels = load_mnist(str(root), train=False, download=True)
    assert images.shape == (16, 1, 28, 28) and len(labels) == 16
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mnist_truncated(tmp_path):
    fake_mnist(tmp_path, truncate=True)
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_mnist(str(tmp_path), download=False)


def test_mnist_wrong_shape(tmp_path):
    fake_mnist(tmp_path, size=32)
    with pytest.raises(DataError, match=r"expected \(N, 28, 28\)"):
        load_mnist(str(tmp_path), download=False)


def test_folder_dataset_corrupt_image_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.jpg").write_bytes(b"not a jpeg")
    cfg = DataConfig(dataset="folder", root=str(tmp_path), image_size=64, channels=3, workers=0)
    with pytest.raises(DataError, match="bad.jpg"):
        load_training_images(cfg, torch.device("cpu"))


def test_folder_dataset_resized_and_resident(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (90, 70), color=i * 50).save(tmp_path / cls / f"{i}.png")
    cfg = DataConfig(dataset="imagenet", root=str(tmp_path), image_size=64, channels=3, workers=0)
    data = load_training_images(cfg, torch.device("cpu"))
    assert data.resident and data.images.shape == (6, 3, 64, 64)
    streaming = load_training_images(
        cfg.__class__(**{**cfg.__dict__, "device_max_gb": 0}), torch.device("cpu")
    )
    assert not streaming.resident
    batch = next(
        streaming.batches(seed=0, epoch=0, start=0, batch_size=2, device=torch.device("cpu"))
    )
    assert batch.shape == (2, 3, 64, 64)


def test_celeba_folder_missing(tmp_path):
    cfg = DataConfig(
        dataset="celeba", root=str(tmp_path), image_size=64, channels=3, download=False
    )
    with pytest.raises(DataError, match="no CelebA images"):
        load_training_images(cfg, torch.device("cpu"))


def test_synthetic_is_deterministic_and_classed():
    a, la = make_synthetic(50, seed=3)
    b, lb = make_synthetic(50, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert set(la.tolist()) == set(range(10))
    assert a.float().mean() > 5  # strokes are drawn


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert torch.equal(epoch_permutation(100, 1, 2), epoch_permutation(100, 1, 2))
    assert not torch.equal(epoch_permutation(100, 1, 2), epoch_permutation(100, 1, 3))


def _rgb(dataset, root, **kw):
    return DataConfig(dataset=dataset, root=str(root), image_size=64, channels=3, workers=0, **kw)


@pytest.mark.parametrize(
    "layout, message",
    [
        (
            "missing",
            r"imagenet: .*/nodata is not a class-folder tree of images \(it does not exist\)",
        ),
        ("empty", r"is not a class-folder tree of images \(it has no class folders\)"),
        ("text", r"\(its class folders hold no images \(.jpg, .jpeg, .png, .bmp, .webp\)\)"),
        (
            "bad-first",
            r"^cannot read image .*/a/0.jpg \(not an image file PIL can read\); delete or re-copy "
            "it$",
        ),
    ],
)
def test_check_data_refuses_what_training_would(tmp_path, layout, message):
    root = tmp_path / ("nodata" if layout == "missing" else "data")
    if layout != "missing":
        root.mkdir()
    if layout in ("text", "bad-first"):
        (root / "a").mkdir()
        (root / "a" / ("notes.txt" if layout == "text" else "0.jpg")).write_text("not an image")
    with pytest.raises(DataError, match=message) as err:
        check_data(_rgb("imagenet", root))
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=message):  # the same rule, in one place
        load_training_images(_rgb("imagenet", root), torch.device("cpu"))


def test_check_data_finds_files_without_decoding_them_all(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("RGB", (70, 70)).save(tmp_path / "a" / "0.png")
    (tmp_path / "a" / "1.png").write_bytes(b"decoded only by training")
    check_data(_rgb("folder", tmp_path))  # finds both, reads the first only
    check_data(_rgb("celeba", tmp_path, download=False))  # a flat folder of faces
    check_data(DataConfig(dataset="synthetic", root=str(tmp_path / "nothing")))
    assert not (tmp_path / "nothing").exists()


def test_check_data_celeba_and_mnist(tmp_path, monkeypatch):
    import torchvision

    with pytest.raises(DataError, match="no CelebA images under"):
        check_data(_rgb("celeba", tmp_path, download=False))

    def offline(self):  # as torchvision does: make the folder, then Google Drive fails
        (tmp_path / "new" / "celeba").mkdir(parents=True)
        raise RuntimeError("quota exceeded")

    monkeypatch.setattr(torchvision.datasets.CelebA, "download", offline)
    with pytest.raises(DataError, match="CelebA is not in .* could not be downloaded"):
        check_data(_rgb("celeba", tmp_path / "new"))
    assert not (tmp_path / "new").exists()

    with pytest.raises(DataError, match="MNIST is 28x28 grey"):
        check_data(DataConfig(root=str(tmp_path), image_size=64, download=False))
    fake_mnist(tmp_path / "m")
    check_data(DataConfig(root=str(tmp_path / "m"), download=False), test_split=True)
    (tmp_path / "m" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="MNIST files t10k-images-idx3-ubyte are not in"):
        check_data(DataConfig(root=str(tmp_path / "m"), download=False))  # torchvision needs all


def test_mnist_as_shipped_gz_files_reads_offline(tmp_path):
    """The README's --data-root DIR with DIR/MNIST/raw/*-ubyte.gz (as MNIST's mirrors ship it):
    unpacked beside the .gz files, no download."""
    import gzip

    fake_mnist(tmp_path, n=8)
    raw = tmp_path / "MNIST" / "raw"
    for f in list(raw.iterdir()):
        (raw / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    images, labels = load_mnist(str(tmp_path), train=True, download=False)
    assert images.shape == (8, 1, 28, 28) and len(labels) == 8
    assert len(list(raw.glob("*-ubyte"))) == 4 and not list(raw.glob(".*"))
