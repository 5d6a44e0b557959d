"""The rules deploy/k8s promises, checked on rendered objects (used by tools/k8s_validate.py).

Schema validation says a manifest is well formed, not that it does what the operator's guide
says. These are the promises an edit could quietly break: every process probed on /livez and
/readyz; every API the node serves exposed (a service added to the registry needs its port);
nothing running as root or with a writable root filesystem; keys mounted read-only and named
by TRACO_NODE_KEY_FILE; the validators' PodDisruptionBudget; no ServiceAccount token; and in
prod: every topic of the chain a KafkaTopic with 3 replicas and min.insync.replicas 2,
infinite retention for blocks and bounded for tx and dead letters, a KafkaUser per node that
can write blocks only if it is a validator, TLS settings and no topic creation by the nodes.
Each broken rule is one line; all are returned at once.
"""

from __future__ import annotations

from typing import Any

from traco.core.topics import chain_topics

Doc = dict[str, Any]


def _by_kind(documents: list[Doc], kind: str) -> list[Doc]:
    return [d for d in documents if d.get("kind") == kind]


def _settings(documents: list[Doc]) -> dict[str, str]:
    for doc in _by_kind(documents, "ConfigMap"):
        if doc["metadata"]["name"].startswith("traco-settings"):
            return dict(doc.get("data", {}))
    return {}


def _pod_rules(name: str, pod: Doc) -> list[str]:
    problems: list[str] = []
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True:
        problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken is not false")
    for container in pod.get("containers", []):
        where = f"{name}/{container['name']}"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe not in container:
                problems.append(f"{where}: no {probe}")
        context = container.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: capabilities are not all dropped")
        if "memory" not in container.get("resources", {}).get("limits", {}):
            problems.append(f"{where}: no memory limit")
    return problems


def _node_rules(name: str, pod: Doc, settings: dict[str, str]) -> list[str]:
    problems: list[str] = []
    node = next(c for c in pod["containers"] if c["name"] == "node")
    if node.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
        problems.append(f"{name}: the root filesystem is writable")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
        got = node.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("consensus", 8700):
            problems.append(f"{name}: {probe} is not GET {path} on port 8700")
    mounts = {m["mountPath"]: m for m in node.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for path, kind in (("/var/lib/traco", None), ("/tmp", "emptyDir"), ("/etc/traco/keys", "secret")):
        if path not in mounts:
            problems.append(f"{name}: nothing mounted at {path}")
        elif kind is not None and kind not in volumes.get(mounts[path]["name"], {}):
            problems.append(f"{name}: {path} is not a {kind} volume")
    for path in ("/etc/traco/keys", "/var/lib/traco/genesis.json"):
        if not mounts.get(path, {}).get("readOnly"):
            problems.append(f"{name}: {path} is not mounted read-only")
    env = {e["name"]: e.get("value") for e in node.get("env", [])}
    node_id = env.get("TRACO_NODE_ID")
    if env.get("TRACO_NODE_KEY_FILE") != f"/etc/traco/keys/{node_id}.key":
        problems.append(f"{name}: TRACO_NODE_KEY_FILE is {env.get('TRACO_NODE_KEY_FILE')!r}")
    if node.get("args") != ["serve", "node", "--node", "$(TRACO_NODE_ID)"]:
        problems.append(f"{name}: the container does not run `traco serve node --node <id>`")
    if settings.get("TRACO_DATA_DIR") != "/var/lib/traco" or settings.get("TRACO_API_HOST") != "0.0.0.0":
        problems.append("traco-settings: TRACO_DATA_DIR must be /var/lib/traco and TRACO_API_HOST 0.0.0.0")
    return problems


def _port_rules(documents: list[Doc]) -> list[str]:
    """Every API a node serves (consensus, then each service in registry.ORDER) is a named port of
    the pod and of its Service and is let in by the NetworkPolicy: a new service fails here
    until the manifests serve it."""
    from traco.services import registry

    wanted = {"consensus": 8700, **{svc: 8701 + i for i, svc in enumerate(registry.ORDER)}}
    problems: list[str] = []
    for doc in _by_kind(documents, "StatefulSet") + _by_kind(documents, "Service"):
        if not doc["metadata"]["name"].startswith("traco-node-"):
            continue
        if doc["kind"] == "Service":
            ports = {p["name"]: p["port"] for p in doc["spec"]["ports"]}
        else:
            node = next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "node")
            ports = {p["name"]: p["containerPort"] for p in node.get("ports", [])}
        if ports != wanted:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: ports {ports}, the node serves {wanted}")
    for policy in _by_kind(documents, "NetworkPolicy"):
        if policy["metadata"]["name"] == "traco-node":
            allowed = {p["port"] for rule in policy["spec"].get("ingress", []) for p in rule.get("ports", [])}
            if set(wanted.values()) - allowed:
                problems.append(f"NetworkPolicy traco-node does not let in ports {set(wanted.values()) - allowed}")
    return problems


def _prod_rules(documents: list[Doc], chain: str, nodes: dict[str, str], settings: dict[str, str]) -> list[str]:
    problems: list[str] = []
    expected = {"TRACO_KAFKA_CREATE_TOPICS": "false", "TRACO_KAFKA_SECURITY_PROTOCOL": "SSL"}
    problems += [f"traco-settings: {k} is not {v}" for k, v in expected.items() if settings.get(k) != v]
    topics = {d["spec"]["topicName"]: d["spec"] for d in _by_kind(documents, "KafkaTopic")}
    tx_partitions = int(settings.get("TRACO_TX_PARTITIONS", "4"))  # the nodes expect tx with this many
    wanted = {s.name: s.partitions for s in chain_topics(chain, tx_partitions=tx_partitions, nodes=sorted(nodes))}
    problems += [f"no KafkaTopic for {name}" for name in sorted(set(wanted) - set(topics))]
    problems += [f"KafkaTopic {name} is not a topic of the chain" for name in sorted(set(topics) - set(wanted))]
    for name, spec in sorted(topics.items()):
        config = spec.get("config", {})
        if spec.get("replicas") != 3 or str(config.get("min.insync.replicas")) != "2":
            problems.append(f"KafkaTopic {name}: not 3 replicas with min.insync.replicas 2")
        if name in wanted and spec.get("partitions") != wanted[name]:
            problems.append(f"KafkaTopic {name}: {spec.get('partitions')} partitions, the code says {wanted[name]}")
        retention = int(config.get("retention.ms", 0))
        last = name.split(".")[-1]
        if last == "blocks" and retention != -1:
            problems.append(f"KafkaTopic {name}: blocks must be kept forever (retention.ms -1)")
        if last in ("tx", "dlq") and retention <= 0:
            problems.append(f"KafkaTopic {name}: retention must be bounded")
    users = {d["metadata"]["name"]: d["spec"] for d in _by_kind(documents, "KafkaUser")}
    for node_id, role in sorted(nodes.items()):
        spec = users.get(f"traco-node-{node_id}")
        if spec is None:
            problems.append(f"no KafkaUser for node {node_id}")
            continue
        if spec.get("authentication", {}).get("type") != "tls":
            problems.append(f"KafkaUser traco-node-{node_id}: not TLS client authentication")
        writes = {
            a["resource"].get("name")
            for a in spec.get("authorization", {}).get("acls", [])
            if "Write" in a.get("operations", [])
        }
        if (f"traco.{chain}.blocks" in writes) != (role == "validator"):
            must = "must" if role == "validator" else "must not"
            problems.append(f"KafkaUser traco-node-{node_id}: a {role} {must} write blocks")
        if writes - {f"traco.{chain}.{name}" for name in ("tx", "consensus", "blocks", f"node.{node_id}.")}:
            problems.append(f"KafkaUser traco-node-{node_id}: writes more than its own and its role's topics: {writes}")
    kafka = _by_kind(documents, "Kafka")
    listeners = kafka[0]["spec"]["kafka"].get("listeners", []) if kafka else []
    if not any(lst.get("tls") and lst.get("authentication", {}).get("type") == "tls" for lst in listeners):
        problems.append("Kafka: no TLS listener with client-certificate authentication")
    return problems


def check_rendered(overlay: str, documents: list[Doc], chain: str = "main") -> list[str]:
    """Every broken rule in the rendered objects of ``overlay`` (empty when all hold)."""
    problems: list[str] = []
    settings = _settings(documents)
    nodes: dict[str, str] = {}
    for doc in _by_kind(documents, "StatefulSet") + _by_kind(documents, "Deployment"):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        template = doc["spec"]["template"]
        problems += _pod_rules(name, template["spec"])
        labels = template["metadata"].get("labels", {})
        selector = doc["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{name}: selector {selector} does not match its pod labels (the API server refuses it)")
        if labels.get("app.kubernetes.io/name") == "traco-node":
            nodes[labels["traco.io/node"]] = labels["traco.io/role"]
            problems += _node_rules(name, template["spec"], settings)
    if not nodes:
        problems.append("no TRACO node StatefulSets")
    pdbs = _by_kind(documents, "PodDisruptionBudget")
    if not any(
        p["spec"].get("maxUnavailable") == 1
        and p["spec"]["selector"]["matchLabels"].get("traco.io/role") == "validator"
        for p in pdbs
    ):
        problems.append("no PodDisruptionBudget with maxUnavailable 1 over the validators")
    problems += _port_rules(documents)
    pods = [d["spec"]["template"]["metadata"].get("labels", {}) for d in _by_kind(documents, "StatefulSet")]
    for service in _by_kind(documents, "Service"):
        wanted = service["spec"].get("selector", {})
        if sum(all(labels.get(k) == v for k, v in wanted.items()) for labels in pods) != 1:
            problems.append(f"Service/{service['metadata']['name']}: selects {wanted}: not one workload")
    if not _by_kind(documents, "NetworkPolicy"):
        problems.append("no NetworkPolicy")
    if any(sa.get("automountServiceAccountToken") is not False for sa in _by_kind(documents, "ServiceAccount")):
        problems.append("a ServiceAccount mounts its token")
    if overlay == "prod":
        problems += _prod_rules(documents, chain, nodes, settings)
    return problems
