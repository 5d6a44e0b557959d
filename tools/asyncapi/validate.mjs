// Parse and validate an AsyncAPI document with the official parser (the same rules as AsyncAPI
// Studio and the CLI): schema validity, every $ref resolving, and the parser's lint rules.
// Usage: node validate.mjs <document.json>. Prints every diagnostic; exits 1 on any error, and
// on warnings too, because a warning left alone today is an error someone ships tomorrow.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs <asyncapi.json>');
  process.exit(2);
}
const path = resolve(file);
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, 'utf8'), { source: path });
const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning', [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
let failing = 0;
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join('/') : '(document)';
  console.log(`${names[d.severity] ?? d.severity} ${d.code}: ${d.message} at ${where}`);
  if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) failing += 1;
}
if (!document || failing > 0) {
  console.error(`${path}: ${failing} error(s) or warning(s); the document is not valid AsyncAPI`);
  process.exit(1);
}
const channels = document.channels().length;
const operations = document.operations().length;
const messages = document.components().messages().length;
const schemas = document.components().schemas().length;
console.log(`${path}: valid AsyncAPI ${document.version()} (${channels} channels, ${operations} operations, ${messages} messages, ${schemas} schemas)`);
