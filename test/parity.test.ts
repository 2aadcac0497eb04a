// Parity with dlt itself, part 1 of 2 (the harness and what it compares: test/parity-harness.ts; the corpus:
// test/fixtures/dlt-parity/). The parts are two test files so that they run in parallel processes.
import { paritySuite } from './parity-harness.ts';

paritySuite(1, 2);
