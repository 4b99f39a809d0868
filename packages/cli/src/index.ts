/**
 * @insitu/cli — the `insitu` command. `main(argv, io)` parses flags and calls the
 * libraries; the binary in `bin/insitu.js` only checks the Node version and calls it.
 */
export { main } from './main.js';
export type { CliIo } from './io.js';
export { bringUp } from './commands/up.js';
export type { UpReport, UpOptions } from './commands/up.js';
export { initDataDir } from './commands/init.js';
export type { InitResult, InitOptions } from './commands/init.js';
export { platformStatus } from './commands/status.js';
export type { StatusReport } from './commands/status.js';
