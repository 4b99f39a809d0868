import { createMemoryBackend, createMemoryCoordinator, type MemoryCoordinator } from '@insitu/coord';
import { coordinatorSuite } from './suite.js';

const backend = createMemoryBackend();

coordinatorSuite('memory', () => ({
  make: async () => createMemoryCoordinator({ backend, relistIntervalMs: 500 }),
  partition: (coordinator, cut) => (coordinator as MemoryCoordinator).setReachable(!cut),
}));
