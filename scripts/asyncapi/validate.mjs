// Parses an AsyncAPI document with the AsyncAPI initiative's own parser (@asyncapi/parser, the
// one their CLI and Studio use): schema validation of the document, $ref resolution, and the
// spectral rules. Prints a JSON summary on stdout; exits 1 when the parser reports an error.
//
//   node scripts/asyncapi/validate.mjs FILE      (or - for standard input)
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const path = process.argv[2] ?? '-';
const text = readFileSync(path === '-' ? 0 : path, 'utf8');
const { document, diagnostics } = await new Parser().parse(text);
const severities = ['error', 'warning', 'information', 'hint'];
const report = {
  diagnostics: diagnostics.map((d) => ({
    severity: severities[d.severity] ?? String(d.severity),
    code: d.code,
    message: d.message,
    path: d.path.join('/'),
  })),
};
if (document) {
  report.version = document.version();
  report.title = document.info().title();
  report.channels = document.channels().all().map((c) => ({ id: c.id(), address: c.address() }));
  report.operations = document.operations().all().map((o) => ({
    id: o.id(),
    action: o.action(),
    channels: o.channels().all().map((c) => c.id()),
    messages: o.messages().all().map((m) => m.name()),
  }));
  report.messages = document.components().messages().all().map((m) => ({
    id: m.id(),
    name: m.name(),
    // The payload's fields as the parser resolved them (every $ref followed), one level down.
    properties: Object.fromEntries(
      Object.entries(m.payload()?.properties() ?? {}).map(([name, schema]) => [
        name,
        Object.keys(schema.properties() ?? {}),
      ]),
    ),
  }));
}
console.log(JSON.stringify(report));
process.exit(document && !diagnostics.some((d) => d.severity === 0) ? 0 : 1);
