import { runStoreConformance } from '../../src/store/conformance.js';
import { MemoryStore } from '../../src/store/memory/store.js';

runStoreConformance('memory', async () => ({ store: new MemoryStore() }));
