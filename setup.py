"""vssm: vision state-space backbones with one selective-scan op and plug-in scan strategies.

Installs one top-level package, ``vssm``: the repository's top-level ``kernels/`` and ``scans/`` folders are
its subpackages ``vssm.kernels`` and ``vssm.scans`` (``package_dir`` below; editable installs map them the same
way). Nothing is compiled at install time: the CUDA kernel is Triton (compiled at run time), the CPU kernel is
numba (JIT at run time).
"""
import sys

from setuptools import find_packages, setup

install_requires = [
    "torch>=2.6",  # README "Versions": what the test suite was run on; export / compile need 2.11
    "timm>=1.0.21",  # device= / dtype= factory arguments of timm.layers (MambaVision builds with them)
    "numpy",
    "numba>=0.57",
    "opencv-python",  # what mmcv requires too: one cv2 in the environment
    "safetensors",
    "pyyaml",
]
if sys.platform.startswith("linux"):
    install_requires.append("triton>=3.2")  # torch 2.6's; 3.3 works around a compiler crash (triton_scan)

extras_require = {
    # One era of OpenMMLab: mmengine 0.10 / mmcv 2.1 / mmdet 3.3 / mmseg 1.2 (mmcv is built from source).
    "mm": [
        "mmengine>=0.10,<0.11",
        "mmcv>=2.0.0rc4,<2.2.0",
        "mmdet>=3.3,<3.4",
        "mmsegmentation>=1.2,<1.3",
        "ftfy",
        "regex",
    ],
    "dev": [
        "pytest>=7",
        "hypothesis",
        "ruff",
        "matplotlib",
        "tqdm",
        "pycocotools",
        "tensorboard",
        # export tests: torch.onnx's dynamo exporter writes through onnxscript; onnxruntime runs the result
        "onnx",
        "onnxscript",
        "onnxruntime",
    ],
}

setup(
    name="vssm",
    version="0.1.0",
    description="Vision state-space backbones (VMamba, Vim, MambaVision, LocalMamba, MLLA) with a fused-order scan",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=(find_packages(include=["vssm", "vssm.*"])
              + [f"vssm.{p}" for p in find_packages(include=["kernels", "kernels.*", "scans", "scans.*"])]),
    package_dir={"vssm.kernels": "kernels", "vssm.scans": "scans"},
    python_requires=">=3.9",
    install_requires=install_requires,
    extras_require=extras_require,
    license="Apache-2.0",
)
