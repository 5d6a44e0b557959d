"""Fixtures of the contract suites that need servers started in containers.

``apache_kafka`` (session)
    Bootstrap address of a real Apache Kafka (Confluent's ``cp-kafka`` image, KRaft, topic
    auto-creation off as on a production cluster) started with ``testcontainers``.
``cassandra_container_hosts`` (session)
    ``("host:port",)`` of a real Cassandra started with ``testcontainers``.

Both need the ``containers`` extra and a reachable Docker engine (an operations team's CI).
Where either is missing the tests that ask for them are skipped with the reason (``pytest -rs``
prints it); nothing is started unless a test asks.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from functools import cache

import pytest

KAFKA_IMAGE = os.environ.get("TRACO_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")
CASSANDRA_IMAGE = os.environ.get("TRACO_TEST_CASSANDRA_IMAGE", "cassandra:4.1")


@cache
def docker_unavailable() -> str | None:
    """Why containers cannot run here, or None when a Docker engine answers."""
    try:
        import docker
        import testcontainers  # noqa: F401
    except ImportError as exc:
        return f"testcontainers is not installed (pip install 'traco[containers]'): {exc}"
    # A failed probe leaves the docker library's socket to the garbage collector: collect it
    # here, where its ResourceWarning is expected, not in some later test (warnings are errors).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=3)
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:  # the docker library raises several unrelated types
            where = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
            return f"no Docker engine reachable at {where}: {type(exc).__name__}: {exc}"
        finally:
            gc.collect()
    return None


def _require_docker(what: str) -> None:
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(f"{what} through testcontainers: {reason}")


@pytest.fixture(scope="session")
def apache_kafka() -> Iterator[str]:
    """A real Apache Kafka broker in a container; its bootstrap address."""
    _require_docker("Apache Kafka")
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(KAFKA_IMAGE).with_kraft().with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    with container:
        yield container.get_bootstrap_server()


@pytest.fixture(scope="session")
def cassandra_container_hosts() -> Iterator[tuple[str, ...]]:
    """A real Cassandra node in a container; its contact point as ``("host:port",)``."""
    _require_docker("Cassandra")
    from testcontainers.community.cassandra import CassandraContainer

    with CassandraContainer(CASSANDRA_IMAGE) as container:
        yield tuple(f"{host}:{port}" for host, port in container.get_contact_points())
