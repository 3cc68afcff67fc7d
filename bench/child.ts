import { runDrip, runSteady } from './engine-bench.js';
import { runBullmqDrip } from './peers/bullmq-drip.js';
import { runGraphileDrip } from './peers/graphile-drip.js';
import { reportToParent } from './support/child.js';
import type { Dialect } from '../src/store/database.js';

/**
 * One scenario in its own process (started by bench/support/child.ts runInChild):
 * `node dist/bench/child.js <scenario> '<json args>'`.
 */
const [scenario, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs ?? '{}') as { dialect: Dialect; adminUrl: string; contacts: number; workers: number; delivery: 'inline' | 'dispatch'; rate: number; seconds: number };

switch (scenario) {
  case 'drip':
    await reportToParent(await runDrip(args.dialect, args.adminUrl, args.contacts, args.workers, args.delivery));
    break;
  case 'steady':
    await reportToParent(await runSteady(args.dialect, args.adminUrl, args.rate, args.seconds));
    break;
  case 'bullmq':
    await reportToParent(await runBullmqDrip(args.adminUrl, args.contacts));
    break;
  case 'graphile':
    await reportToParent(await runGraphileDrip(args.adminUrl, args.contacts));
    break;
  default:
    process.stderr.write(`unknown bench scenario ${scenario}\n`);
    process.exitCode = 2;
}
// Pools and timers of the libraries under test may linger; the result is out.
process.exit();
