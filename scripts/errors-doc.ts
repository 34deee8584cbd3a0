// Regenerates docs/errors.md from the catalogue: `node --import tsx scripts/errors-doc.ts`.
import { writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/core/errors.js';

let out = `# Error codes

Every error sessiongate raises on purpose carries one of these stable codes. The admin API
returns them as \`{ "error": { "code", "message" } }\` with the HTTP status shown; the gateway
uses the same codes in its JSON answers to API clients; the CLI prints
\`sessiongate: CODE: message\`. \`test/core/errors.test.ts\` fails when this list and
\`src/core/errors.ts\` disagree (regenerate with \`node --import tsx scripts/errors-doc.ts\`).

| code | HTTP status | meaning |
| --- | --- | --- |
`;
for (const [code, v] of Object.entries(ERROR_CODES))
  out += `| \`${code}\` | ${v.status} | ${v.summary.replace(/\|/g, '\\|')} |\n`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), out);
