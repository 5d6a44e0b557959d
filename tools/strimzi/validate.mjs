// Validates Strimzi custom resources against the schemas of Strimzi's own CRDs, as packaged by
// @kubernetes-models/strimzi-kafka-operator (generated from strimzi-crds-1.0.0.yaml).
// Input: a JSON file holding an array of resources (tools/k8s_validate.py writes it from the
// rendered overlays). Every invalid resource is named with every error; exit 1 if any.
// Caveat: CRD schemas rarely forbid unknown fields, so a misspelt optional field passes here
// (the API server prunes it); tools/k8s_validate.py checks the fields TRACO relies on.
import { readFileSync } from "node:fs";
import * as v1 from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1";

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node validate.mjs RESOURCES.json");
  process.exit(2);
}
const resources = JSON.parse(readFileSync(file, "utf8"));
let failures = 0;
for (const resource of resources) {
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const Model = resource.apiVersion === "kafka.strimzi.io/v1" ? v1[resource.kind] : undefined;
  if (!Model) {
    console.error(`${name}: no Strimzi schema for ${resource.apiVersion} ${resource.kind}`);
    failures++;
    continue;
  }
  try {
    new Model(resource).validate();
  } catch (error) {
    console.error(`${name}: ${error.message}`);
    failures++;
  }
}
console.log(`strimzi: ${resources.length - failures} of ${resources.length} resources valid`);
process.exit(failures ? 1 : 0);
