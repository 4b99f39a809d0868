#!/usr/bin/env node
// Thin binary: check the runtime, then hand over to main(). Everything else is library code.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  process.stderr.write(`insitu needs Node.js 20.12 or newer; this is ${process.version}\n`);
  process.exit(1);
}
// A closed pipe (`insitu … | head`) ends the command quietly, as for other Unix tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
// main.js, not the package index: the index re-exports library entry points (bringUp…) that load the whole platform.
const { main } = await import('../dist/src/main.js');
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
}
process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
