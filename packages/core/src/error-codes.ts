/**
 * Every error code Insitu can answer with, in one place, with the HTTP status that
 * fits and a one-line meaning. Codes are stable: clients and tests match on them.
 * A test checks that each code is documented in this package's README.
 */
export const ERROR_CODES = {
  // Input at the edge
  INSITU_VALIDATION: { status: 400, meaning: 'The request, flag, manifest or config does not match its schema.' },
  INSITU_BAD_JSON: { status: 400, meaning: 'The request body is not valid JSON.' },
  INSITU_BAD_CURSOR: { status: 400, meaning: 'The pagination cursor is malformed or belongs to another query.' },
  INSITU_BODY_TOO_LARGE: { status: 413, meaning: 'The request body exceeds the configured limit.' },
  INSITU_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The request body has a content type the endpoint does not accept.' },
  INSITU_ROUTE_NOT_FOUND: { status: 404, meaning: 'No endpoint has this method and path.' },
  INSITU_CONFIG_INVALID: { status: 400, meaning: 'A config file, environment variable or flag is invalid or unknown.' },
  INSITU_USAGE: { status: 400, meaning: 'A command was called with wrong or missing arguments.' },

  // Authentication and authorisation
  INSITU_UNAUTHENTICATED: { status: 401, meaning: 'No credential, or the credential is unknown, expired or revoked.' },
  INSITU_BAD_CREDENTIALS: { status: 401, meaning: 'Sign-in failed: wrong email or password.' },
  INSITU_FORBIDDEN: { status: 403, meaning: 'The caller is known but its role does not allow this action.' },
  INSITU_ORG_NOT_ACTIVE: { status: 403, meaning: 'The organisation is pending approval or suspended.' },
  INSITU_SIGNUP_CLOSED: { status: 403, meaning: 'Self-service sign-up is turned off on this platform.' },
  INSITU_TOKEN_INVALID: { status: 401, meaning: 'The enrolment token is unknown, expired or already used.' },

  // Resources
  INSITU_NOT_FOUND: { status: 404, meaning: 'The resource does not exist or the caller may not see it.' },
  INSITU_ORG_NOT_FOUND: { status: 404, meaning: 'The organisation does not exist or the caller may not see it.' },
  INSITU_USER_NOT_FOUND: { status: 404, meaning: 'The user does not exist or the caller may not see it.' },
  INSITU_PROVIDER_NOT_FOUND: { status: 404, meaning: 'The provider does not exist.' },
  INSITU_AGENT_NOT_FOUND: { status: 404, meaning: 'The agent does not exist or the caller may not see it.' },
  INSITU_DATASET_NOT_FOUND: { status: 404, meaning: 'The dataset does not exist or the caller may not see it.' },
  INSITU_CONFLICT: { status: 409, meaning: 'The resource already exists or was changed concurrently.' },
  INSITU_LAST_ADMIN: { status: 409, meaning: 'The change would leave the organisation or the platform without an administrator.' },

  // Platform state
  INSITU_NOT_INITIALISED: { status: 400, meaning: 'The data directory has not been initialised; run `insitu init`.' },
  INSITU_ALREADY_INITIALISED: { status: 409, meaning: 'The data directory is already initialised.' },
  INSITU_DATABASE_UNAVAILABLE: { status: 503, meaning: 'The platform database cannot be reached.' },
  INSITU_UNAVAILABLE: { status: 503, meaning: 'The platform cannot serve the request right now; retry later.' },
  INSITU_NOT_READY: { status: 503, meaning: 'The process is alive but not ready to serve.' },
  INSITU_REMOTE: { status: 502, meaning: 'A platform endpoint called by the CLI answered with an error or could not be reached.' },

  // Coordination (coord)
  INSITU_COORD_UNAVAILABLE: { status: 503, meaning: 'The coordination store (etcd) cannot be reached, or the coordinator is closed.' },
  INSITU_COORD_LEASE_LOST: { status: 503, meaning: 'A coordination lease expired or was revoked; what it held is gone.' },
  INSITU_COORD_NOT_LEADER: { status: 409, meaning: 'This node no longer holds the leadership; its fenced write was refused.' },
  // Database manager
  INSITU_DBMANAGER_NOT_LEADER: { status: 503, meaning: 'This dbmanager is not the elected one; the details name the leader to ask.' },
  INSITU_DBMANAGER_NO_LEADER: { status: 503, meaning: 'No dbmanager is elected (or none can be reached) right now.' },
  INSITU_DBMANAGER_MEMBER_NOT_FOUND: { status: 404, meaning: 'No database member has this name in the dbmanager config.' },
  INSITU_DBMANAGER_SWITCHOVER_REFUSED: { status: 409, meaning: 'The switchover was refused before anything changed: the target or the primary is not healthy enough.' },
  INSITU_DBMANAGER_SWITCHOVER_FAILED: { status: 503, meaning: 'The switchover started but could not finish; the details say what was rolled back.' },
  INSITU_INTERNAL: { status: 500, meaning: 'An unexpected error; the request id finds it in the logs.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

/** A stable error code, e.g. `INSITU_DATASET_NOT_FOUND`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of ours. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
