import { InsituError } from '@insitu/core';

/** Every fault the bed knows, in the order a full run plays them. */
export const FAULTS = [
  'server-kill',
  'agent-kill',
  'primary-kill',
  'etcd-kill',
  'partition-mgmt',
  'netem-prov1',
  'node-loss-primary',
  'node-loss-leader',
  'dbmanager-stop',
  'app-instance-kill',
  'random-sequence',
] as const;
export type FaultName = (typeof FAULTS)[number];
/** The `--quick` three (the CI run). */
export const QUICK_FAULTS: readonly FaultName[] = ['server-kill', 'agent-kill', 'primary-kill'];

export interface TestbedOptions {
  faults: readonly FaultName[];
  seed: number;
  quick: boolean;
  keep: boolean;
  clean: boolean;
  /** Calls per second from `client` through HAProxy. */
  rate: number;
  /** Where the JSON report, the markdown table and the logs go. */
  out: string;
}

const USAGE =
  'usage: npm run testbed -- [--faults LIST|all] [--seed N] [--quick] [--keep] [--clean] [--rate N] [--out DIR]';

function usage(message: string): InsituError {
  return new InsituError('INSITU_USAGE', `${message}\n${USAGE}\nfaults: ${FAULTS.join(', ')}`);
}

/**
 * Parse the bed's flags. Unknown flags, unknown faults and malformed numbers throw an
 * `INSITU_USAGE` error (the entry point exits 2 with it).
 */
export function parseTestbedArgs(argv: readonly string[]): TestbedOptions {
  const options: TestbedOptions = {
    faults: QUICK_FAULTS,
    seed: 1,
    quick: false,
    keep: false,
    clean: false,
    rate: 200,
    out: 'e2e/testbed/out',
  };
  let faultsGiven = false;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw usage(`${flag} needs a value`);
    return v;
  };
  const integer = (text: string, flag: string, min: number): number => {
    if (!/^\d+$/.test(text) || Number(text) < min)
      throw usage(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    switch (arg) {
      case '--quick':
        options.quick = true;
        break;
      case '--keep':
        options.keep = true;
        break;
      case '--clean':
        options.clean = true;
        break;
      case '--seed':
        options.seed = integer(value(i, arg), arg, 0);
        i++;
        break;
      case '--rate':
        options.rate = integer(value(i, arg), arg, 1);
        i++;
        break;
      case '--out':
        options.out = value(i, arg);
        i++;
        break;
      case '--faults': {
        const list = value(i, arg);
        i++;
        faultsGiven = true;
        if (list === 'all') {
          options.faults = FAULTS;
          break;
        }
        const names = list
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = names.filter((n) => !(FAULTS as readonly string[]).includes(n));
        if (unknown.length > 0 || names.length === 0)
          throw usage(`unknown fault(s): ${unknown.join(', ') || '(none given)'}`);
        options.faults = names as FaultName[];
        break;
      }
      default:
        throw usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (options.quick && faultsGiven) throw usage('--quick runs the quick three faults; do not combine it with --faults');
  if (!options.quick && !faultsGiven) options.faults = FAULTS;
  if (options.quick) options.faults = QUICK_FAULTS;
  return options;
}
