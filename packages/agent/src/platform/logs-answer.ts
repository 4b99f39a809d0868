import { AGENT_LOGS_PATH } from '@insitu/core';
import type { Agent } from '../agent.js';
import type { OutputLine } from '../apps/output-log.js';

/** The two answer forms of the tunnel (raw HTTP/2 stream, compatibility response) behind one face. */
export interface LogsAnswer {
  respond(status: number, headers: Record<string, string>): void;
  write(text: string): void;
  end(text?: string): void;
  onClose(fn: () => void): void;
}

const MAX_LINES = 1000;

/**
 * Answer `GET /_insitu/logs/{deployment}?lines=N[&follow=1]` from the agent's memory of
 * what the deployment's instances wrote: the last N lines (default 100, at most 1000) as
 * JSON lines, then, with `follow`, every new line until the platform closes the stream.
 * Only the platform can ask (the tunnel is the agent's own connection to it); whether a
 * caller may see a deployment's output is the platform's decision (the provider's
 * per-deployment setting).
 */
export function answerLogs(agent: Agent, pathWithQuery: string, out: LogsAnswer): void {
  const url = new URL(pathWithQuery, 'http://agent.insitu');
  const deployment = decodeURIComponent(url.pathname.slice(AGENT_LOGS_PATH.length + 1));
  const output = agent.outputOf(deployment);
  if (!output) {
    out.respond(404, { 'content-type': 'application/json' });
    out.end(
      JSON.stringify({
        error: {
          code: 'INSITU_APP_UNAVAILABLE',
          message: `deployment ${deployment.slice(0, 100)} does not run on this agent`,
        },
      }),
    );
    return;
  }
  const asked = Number(url.searchParams.get('lines') ?? 100);
  const lines = Number.isInteger(asked) && asked >= 0 ? Math.min(asked, MAX_LINES) : 100;
  const follow = url.searchParams.get('follow') === '1';
  out.respond(200, { 'content-type': 'application/x-ndjson' });
  const text = (line: OutputLine) => `${JSON.stringify(line)}\n`;
  const past = output.tail(lines).map(text).join('');
  if (!follow) {
    out.end(past);
    return;
  }
  if (past) out.write(past);
  const stop = output.follow((line) => out.write(text(line)));
  out.onClose(stop);
}
