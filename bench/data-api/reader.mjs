// The "application" side of the benchmark: reads a dataset through the data API with the
// SDK, in its own process (as an application in a sandbox would), and reports rows and time.
import { readDataset } from '@insitu/sdk';

const [socketPath, name, mode] = process.argv.slice(2);
const started = process.hrtime.bigint();
let rows = 0;
let checksum = 0;
if (mode === 'objects') {
  for await (const row of readDataset(name, { socketPath })) {
    rows++;
    checksum += row.qty;
  }
} else {
  for await (const row of readDataset(name, { socketPath, arrays: true })) {
    rows++;
    checksum += row[2];
  }
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${JSON.stringify({ rows, ms, checksum })}\n`);
