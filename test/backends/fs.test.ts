// The shared conformance suite on the filesystem backend, once per durability level.

import { runConformance } from '../conformance/index.js';
import { fsHarness } from '../helpers/fs-harness.js';

for (const durability of ['full', 'file', 'none'] as const) {
  runConformance(`fs (durability ${durability})`, fsHarness(durability));
}
