import { writeFileSync } from 'node:fs';
import { configReference } from '../src/config/docs.js';
writeFileSync(new URL('../docs/configuration.md', import.meta.url), configReference() + '\n');
console.log('wrote docs/configuration.md');
