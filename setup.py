"""The compiled parts (decision 0008): the state tree's apply (core/_smt_native.c), the
canonical encoder's type guard (core/_canonical_native.c) and Kafka's murmur2 hash
(core/adapters/_murmur2_native.c).

Optional: where no C compiler (or, for the tree, no OpenSSL headers) is found the build goes
on without them and ``core/smt_tree.py`` and ``core/canonical.py`` compute in Python, giving
the same results (property tests check each pair against each other). ``TRACO_NATIVE=0``
chooses the Python ones at run time. Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "traco.core._smt_native",
            sources=[
                "core/_smt_native.c",
                "core/smt_native_nodes.c",
                "core/smt_native_descent.c",
                "core/smt_native_pages.c",
            ],
            depends=["core/smt_native.h"],
            include_dirs=["core"],
            libraries=["crypto"],
            # hidden: the files share functions with plain names (update, build, join...),
            # which must not be visible to other libraries in the process
            extra_compile_args=["-O2", "-fvisibility=hidden", "-Wno-deprecated-declarations"],
            optional=True,
        ),
        Extension(
            "traco.core.adapters._murmur2_native",
            sources=["core/adapters/_murmur2_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
        Extension(
            "traco.core._canonical_native",
            sources=["core/_canonical_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ]
)
