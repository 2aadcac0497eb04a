// Parity with dlt itself, part 2 of 2 (see test/parity.test.ts).
import { paritySuite } from './parity-harness.ts';

paritySuite(2, 2);
