"""The one compiled part: the state tree's apply (core/_smt_native.c; decision 0008).

Optional: where no C compiler or OpenSSL headers are found the build goes on without it and
``core/smt_tree.py`` computes in Python, giving the same trees (the property tests check the
two against each other). Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "traco.core._smt_native",
            sources=["core/_smt_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wno-deprecated-declarations"],
            optional=True,
        )
    ]
)
