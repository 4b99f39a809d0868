// The "application" side of the benchmark: reads a dataset through the data API with the
// SDK, in its own process (as an application in a sandbox would), and reports rows and time.
import { readDataset } from '@insitu/sdk';

const [socketPath, name, mode] = process.argv.slice(2);
const started = process.hrtime.bigint();
let rows = 0;
let checksum = 0;
if (mode === 'raw') {
  // Only what the agent sends: count the row lines without parsing them.
  const { request } = await import('node:http');
  rows = await new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: `/v1/datasets/${name}/query`,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let lines = 0;
        res.on('data', (chunk) => {
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        });
        res.on('end', () => resolve(lines - 2));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
} else if (mode === 'objects') {
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
