#!/usr/bin/env node
// bench/like: the CSV source's LIKE matcher (a compiled code-point wildcard walk, no
// RegExp) against the backtracking RegExp translation it replaced (issue 16), on the same
// values in this one process. Prints ns per value (median of --repeat runs) and the ratio.
// Run after `npm run build`:  node bench/like/run.mjs [--values N] [--repeat N]
import { likeMatcher } from '@insitu/agent';
import { benchArgs } from '../args.mjs';

const args = benchArgs('node bench/like/run.mjs [--values N] [--repeat N]', {
  values: { default: '200000', kind: 'count', help: 'values matched per pattern and run' },
  repeat: { default: '5', kind: 'count', help: 'runs per pattern; the median is printed' },
});
const VALUES = Number(args.values);
const REPEAT = Number(args.repeat);

/** The translation the CSV source used before: `%` → `.*`, `_` → `.`, anchored, with the `s` and `u` flags. */
function likeToRegExp(pattern) {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\' && i + 1 < pattern.length) out += pattern[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else if (ch === '%') out += '.*';
    else if (ch === '_') out += '.';
    else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  const re = new RegExp(`^${out}$`, 'su');
  return (value) => re.test(value);
}

const CITIES = [
  'Berlin',
  'berlin',
  'Zürich',
  'Ørsted',
  'Aachen',
  'B_town',
  '𝔘nicode',
  'São Paulo',
  'Hamburg-Altona',
  'Frankfurt am Main',
];
const words = Array.from(
  { length: VALUES },
  (_, i) => `${CITIES[i % CITIES.length]} store ${i} ${i % 3 ? 'retail' : 'wholesale'} ${'x'.repeat(i % 40)}`,
);

function nsPerValue(match, values, repeat = REPEAT) {
  const runs = [];
  for (let r = 0; r < repeat; r++) {
    let hits = 0;
    const started = process.hrtime.bigint();
    for (const v of values) if (match(v)) hits++;
    runs.push(Number(process.hrtime.bigint() - started) / values.length);
    if (hits < 0) throw new Error('unreachable');
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)];
}

const cases = [
  ['prefix', 'Berlin%', words],
  ['contains', '%retail%', words],
  ['suffix', '%xxxxx', words],
  ['one char', '_erlin store%', words],
  ['several %', '%store%1%retail%', words],
  ['no match', '%nowhere%', words],
  // The pattern on a 30-character value: about 10 s for the RegExp, so one value, one run.
  ['hostile (12 × %a, 30 chars)', '%a%a%a%a%a%a%a%a%a%a%a%a%b', ['a'.repeat(30)], 1],
];

process.stdout.write(
  `LIKE: ns per value, median of ${REPEAT} runs; ${VALUES} values per pattern (the hostile one: 1 value, 1 run)\n`,
);
process.stdout.write('| pattern | likeMatcher | RegExp (before) | matcher ÷ RegExp |\n|---|---:|---:|---:|\n');
for (const [name, pattern, values, repeat] of cases) {
  const matcher = nsPerValue(likeMatcher(pattern), values, repeat);
  const regexp = nsPerValue(likeToRegExp(pattern), values, repeat);
  process.stdout.write(
    `| ${name} \`${pattern}\` | ${matcher.toFixed(0)} | ${regexp.toFixed(0)} | ${(matcher / regexp).toFixed(2)} |\n`,
  );
}
