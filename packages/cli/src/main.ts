import { InsituError, VERSION, checkEnv } from '@insitu/core/basics';
import { Command, CommanderError } from 'commander';
import { line, resolveIo, type CliIo } from './io.js';
import { registerAccounts } from './program/accounts.js';
import { registerAgent } from './program/agent.js';
import { registerApps } from './program/apps.js';
import { registerCluster } from './program/cluster.js';
import { registerOperations } from './program/operations.js';
import type { CommandContext } from './program/options.js';
import { registerPlatform } from './program/platform.js';
import { registerRecords } from './program/records.js';

/**
 * The `insitu` command line. Parses flags, loads the one command's module it runs (so
 * `insitu --help` loads none of the platform's packages), calls library functions, and turns errors
 * into a message and an exit code: 0 ok, 1 failed, 2 usage or configuration error.
 * Tests call it in-process with their own streams and an AbortSignal.
 *
 * @example await main(['status', '--json'], { stdout, stderr })
 */
export async function main(argv: readonly string[], partialIo: Partial<CliIo> = {}): Promise<number> {
  const io = resolveIo(partialIo);
  const jsonErrors = argv.includes('--json');
  const ctx: CommandContext = { io, exitCode: 0 };
  const program = new Command('insitu')
    .description('Insitu: Data-as-a-Service where data never leaves the data provider')
    .version(VERSION, '-v, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      // With --json, a usage error is one JSON line on stderr too, without the human hint.
      writeErr: (s) => (jsonErrors ? undefined : io.stderr.write(s)),
      outputError: (s, write) => {
        if (jsonErrors)
          line(
            io.stderr,
            JSON.stringify({ error: { code: 'INSITU_USAGE', message: s.trim().replace(/^error: /, '') } }),
          );
        else write(s);
      },
    });

  // In the order `insitu --help` lists them.
  registerPlatform(program, ctx);
  registerAgent(program, ctx);
  registerApps(program, ctx);
  registerRecords(program, ctx);
  registerAccounts(program, ctx);
  registerOperations(program, ctx);
  registerCluster(program, ctx);

  try {
    checkEnv(io.env);
    if (argv.length === 0) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (with a "did you mean" where it has one).
      return error.exitCode === 0 ? 0 : 2;
    }
    // With --json, a script reads the error as JSON too: one line on stderr, the shape of the API's error bodies.
    if (error instanceof InsituError) {
      if (jsonErrors) line(io.stderr, JSON.stringify({ error: { code: error.code, message: error.message } }));
      else line(io.stderr, `insitu: ${error.message} [${error.code}]`);
      return error.code === 'INSITU_USAGE' || error.code === 'INSITU_CONFIG_INVALID' ? 2 : 1;
    }
    if (jsonErrors)
      line(
        io.stderr,
        JSON.stringify({ error: { code: 'INSITU_INTERNAL', message: (error as Error)?.message ?? String(error) } }),
      );
    else line(io.stderr, `insitu: internal error: ${(error as Error)?.stack ?? String(error)} [INSITU_INTERNAL]`);
    return 70;
  }
}
