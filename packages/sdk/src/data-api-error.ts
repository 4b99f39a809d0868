/**
 * An error answered by the agent's data API (or a broken answer), with the agent's stable
 * code, e.g. `INSITU_DATASET_NOT_DECLARED`. The SDK does not depend on `@insitu/core`,
 * so that applications can load it alone inside their sandbox.
 */
export class DataApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 500) {
    super(message);
    this.name = 'DataApiError';
    this.code = code;
    this.status = status;
  }
}
