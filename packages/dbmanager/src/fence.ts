import { killClientConnections, setLockWaitTimeout, setReadOnly } from './actions.js';
import type { MemberConnection } from './sql.js';

/** What {@link fenceMember} did. */
export interface FenceResult {
  /** Client connections killed, over every pass. */
  killed: number;
  /** True once `read_only=1` took effect within the deadline. */
  readOnly: boolean;
  /** Kill passes run while `SET GLOBAL read_only=1` was waiting. */
  passes: number;
}

/**
 * Fence a member that must not take writes, at once.
 *
 * `SET GLOBAL read_only=1` waits for commits in progress, and a commit on a primary that
 * lost its replicas waits for a semi-sync acknowledgement that never comes; once it
 * finally returned, that commit had been acknowledged to its client on the wrong side.
 * So the client connections are killed first (KILL does not wait: a commit waiting for
 * semi-sync ends with an error to its client, never with an OK), and while
 * `read_only=1` waits on a second connection the kill is repeated, so a client that
 * connected in between cannot hold it up or get an OK either. A last pass after
 * `read_only=1` ends transactions that were open before it.
 *
 * `open` gives a fresh admin connection; both are closed here.
 */
export async function fenceMember(
  open: () => Promise<MemberConnection>,
  spareUsers: readonly string[],
  options: { deadlineMs: number; passIntervalMs?: number },
): Promise<FenceResult> {
  const killer = await open();
  let killed = 0;
  let passes = 0;
  try {
    killed += await killClientConnections(killer, spareUsers);
    let settled = false;
    let readOnly = false;
    const setter = (async () => {
      const connection = await open();
      try {
        await setLockWaitTimeout(connection, Math.max(1, Math.ceil(options.deadlineMs / 1000)));
        await setReadOnly(connection, true);
        readOnly = true;
      } finally {
        settled = true;
        await connection.close();
      }
    })();
    setter.catch(() => undefined);
    const until = Date.now() + options.deadlineMs;
    while (!settled && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, options.passIntervalMs ?? 20));
      if (settled) break;
      passes += 1;
      killed += await killClientConnections(killer, spareUsers);
    }
    await setter.catch(() => undefined);
    killed += await killClientConnections(killer, spareUsers);
    return { killed, readOnly, passes };
  } finally {
    await killer.close();
  }
}
