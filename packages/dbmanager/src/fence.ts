import { sqlErrorInfo, type MemberConnection } from './sql.js';
import { killClientConnections, readReadOnly, setLockWaitTimeout, setReadOnly } from './actions.js';

/** What {@link fenceMember} did. */
export interface FenceResult {
  /** Client connections killed, over every pass. */
  killed: number;
  /**
   * True only when `SELECT @@global.read_only` on the member, read after the last kill
   * pass, answered 1. Never taken from `SET GLOBAL read_only=1` having returned.
   */
  readOnly: boolean;
  /** Kill passes run while `SET GLOBAL read_only=1` was waiting. */
  passes: number;
  /** Why the fence did not take effect (absent when `readOnly`). */
  error?: string;
  /** True when the member could not be reached at all (no connection, or the check got no answer). */
  unreachable?: boolean;
}

/**
 * Fence a member that must not take writes, at once, and say truthfully whether it worked.
 *
 * `SET GLOBAL read_only=1` waits for commits in progress, and a commit on a primary that
 * lost its replicas waits for a semi-sync acknowledgement that never comes; once it
 * finally returned, that commit had been acknowledged to its client on the wrong side.
 * So the client connections are killed first (KILL does not wait: a commit waiting for
 * semi-sync ends with an error to its client, never with an OK), and while
 * `read_only=1` waits on a second connection the kill is repeated, so a client that
 * connected in between cannot hold it up or get an OK either. A last pass after
 * `read_only=1` ends transactions that were open before it. Then `@@global.read_only` is
 * read back: only that answer makes `readOnly` true. `SET GLOBAL read_only=1` can wait
 * past the deadline (its `lock_wait_timeout` is the deadline, rounded up to a second)
 * behind a lock the kill passes may not end (a spared user's `LOCK TABLES … WRITE` or a
 * long statement); the fence then reports `readOnly: false` and the caller retries.
 *
 * `open` gives a fresh admin connection; both are opened before the first kill pass and
 * closed here. Never throws: a member that
 * cannot be reached gives `{ readOnly: false, unreachable: true }`.
 */
export async function fenceMember(
  open: () => Promise<MemberConnection>,
  spareUsers: readonly string[],
  options: { deadlineMs: number; passIntervalMs?: number },
): Promise<FenceResult> {
  let killer: MemberConnection;
  try {
    killer = await open();
  } catch (error) {
    return { killed: 0, readOnly: false, passes: 0, error: sqlErrorInfo(error).message, unreachable: true };
  }
  let killed = 0;
  let passes = 0;
  let setError: string | undefined;
  // The setter's connection is opened before any kill pass: while it is still authenticating,
  // PROCESSLIST shows it as `unauthenticated user`, and a pass would kill it (seen under load).
  let setterConnection: MemberConnection | undefined;
  try {
    setterConnection = await open();
  } catch (error) {
    setError = sqlErrorInfo(error).message;
  }
  try {
    killed += await killClientConnections(killer, spareUsers);
    let settled = false;
    const setter = (async () => {
      if (setterConnection === undefined) return;
      try {
        await setLockWaitTimeout(setterConnection, Math.max(1, Math.ceil(options.deadlineMs / 1000)));
        await setReadOnly(setterConnection, true);
      } finally {
        await setterConnection.close();
      }
    })()
      .catch((error: unknown) => {
        setError = sqlErrorInfo(error).message;
      })
      .finally(() => {
        settled = true;
      });
    const until = Date.now() + options.deadlineMs;
    while (!settled && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, options.passIntervalMs ?? 20));
      if (settled) break;
      passes += 1;
      killed += await killClientConnections(killer, spareUsers);
    }
    await setter;
    killed += await killClientConnections(killer, spareUsers);
    const readOnly = await readReadOnly(killer);
    if (readOnly) return { killed, readOnly, passes };
    return {
      killed,
      readOnly,
      passes,
      error: `read_only is still 0 after the fence${setError === undefined ? '' : `: SET GLOBAL read_only=1 failed: ${setError}`}`,
    };
  } catch (error) {
    // The kill or the check got no answer: nothing says the member is read-only.
    const message = sqlErrorInfo(error).message;
    return {
      killed,
      readOnly: false,
      passes,
      error: setError === undefined ? message : `${message} (SET GLOBAL read_only=1: ${setError})`,
    };
  } finally {
    await killer.close();
  }
}
