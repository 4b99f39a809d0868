/**
 * Thrown when a system binary that a test needs is not installed. The message says
 * which Debian package provides it and how to install it.
 */
export class MissingCommandError extends Error {
  /** Stable code, for callers that want to skip rather than fail. */
  readonly code = 'INSITU_TEST_COMMAND_MISSING';
  override readonly name = 'MissingCommandError';

  constructor(
    /** The binary that was looked for, e.g. `mariadbd`. */
    readonly command: string,
    /** The Debian package that provides it, e.g. `mariadb-server`. */
    readonly debianPackage: string,
    /** The directories that were searched. */
    readonly searched: readonly string[],
  ) {
    super(
      `${command} is not installed (Debian package ${debianPackage}). ` +
        `Run \`node scripts/test-deps.mjs\` as root, or \`apt-get install -y ${debianPackage}\`. ` +
        `Searched: ${searched.join(':')}`,
    );
  }
}
