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
  INSITU_BODY_TOO_LARGE: {
    status: 413,
    meaning:
      "The request body exceeds the endpoint's limit: the API's, or at the gateway the called service's (one code for both).",
  },
  INSITU_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    meaning: 'The request body has a content type the endpoint does not accept.',
  },
  INSITU_ROUTE_NOT_FOUND: { status: 404, meaning: 'No endpoint has this path.' },
  INSITU_METHOD_NOT_ALLOWED: {
    status: 405,
    meaning: 'An endpoint has this path but not this method; the Allow header lists the methods it has.',
  },
  INSITU_BAD_PATH: {
    status: 400,
    meaning:
      'The request path is malformed: a broken percent-escape, bytes that are not UTF-8, or characters a URL may not hold.',
  },
  INSITU_PATH_TOO_LONG: {
    status: 414,
    meaning: 'A path parameter is longer than the endpoint accepts (200 characters on the REST API).',
  },
  INSITU_BAD_REQUEST: {
    status: 400,
    meaning: 'The request is not well-formed HTTP (request line or header syntax); the connection is closed.',
  },
  INSITU_HEADERS_TOO_LARGE: {
    status: 431,
    meaning: 'The request line and headers together exceed the server limit (16 KiB); the connection is closed.',
  },
  INSITU_REQUEST_TIMEOUT: {
    status: 408,
    meaning: 'The request did not arrive completely in time; the connection is closed.',
  },
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
  INSITU_LAST_ADMIN: {
    status: 409,
    meaning: 'The change would leave the organisation or the platform without an administrator.',
  },

  // Platform state
  INSITU_NOT_INITIALISED: { status: 400, meaning: 'The data directory has not been initialised; run `insitu init`.' },
  INSITU_ALREADY_INITIALISED: { status: 409, meaning: 'The data directory is already initialised.' },
  INSITU_DATABASE_UNAVAILABLE: { status: 503, meaning: 'The platform database cannot be reached.' },
  INSITU_UNAVAILABLE: { status: 503, meaning: 'The platform cannot serve the request right now; retry later.' },
  INSITU_NOT_READY: { status: 503, meaning: 'The process is alive but not ready to serve.' },
  INSITU_REMOTE: {
    status: 502,
    meaning: 'A platform endpoint called by the CLI answered with an error or could not be reached.',
  },

  // Coordination (coord)
  INSITU_COORD_UNAVAILABLE: {
    status: 503,
    meaning: 'The coordination store (etcd) cannot be reached, or the coordinator is closed.',
  },
  INSITU_COORD_LEASE_LOST: {
    status: 503,
    meaning: 'A coordination lease expired or was revoked; what it held is gone.',
  },
  INSITU_COORD_NOT_LEADER: {
    status: 409,
    meaning: 'This node no longer holds the leadership; its fenced write was refused.',
  },

  // Reverse tunnel (tunnel)
  INSITU_TUNNEL_NO_ROUTE: {
    status: 503,
    meaning: 'No live agent session serves this provider and service on any platform node.',
  },
  INSITU_TUNNEL_UPSTREAM_FAILED: {
    status: 502,
    meaning: 'The agent session failed before a complete answer and the request could not be retried.',
  },
  INSITU_TUNNEL_TIMEOUT: { status: 504, meaning: 'The agent did not answer within the deadline.' },
  INSITU_TUNNEL_UNAVAILABLE: { status: 503, meaning: 'A platform node or agent session cannot be reached right now.' },
  INSITU_TUNNEL_BAD_UPGRADE: {
    status: 400,
    meaning: 'The tunnel upgrade request is malformed (method, Upgrade header or path).',
  },
  INSITU_TUNNEL_BAD_FRAME: {
    status: 400,
    meaning: 'A control frame is not JSON, too long or does not match its schema; the session is closed.',
  },
  INSITU_TUNNEL_PROTOCOL: {
    status: 400,
    meaning: 'The other side broke the tunnel protocol (HTTP/2 error, control stream closed); the session is closed.',
  },
  INSITU_TUNNEL_TLS_REQUIRED: {
    status: 403,
    meaning: 'The platform accepts agent sessions over TLS only (plain text was not allowed on both sides).',
  },
  INSITU_TUNNEL_CREDENTIAL_REJECTED: {
    status: 401,
    meaning: 'The platform refused the agent credential (unknown or revoked): re-enrol the agent.',
  },
  INSITU_TUNNEL_TOO_MANY_SESSIONS: {
    status: 429,
    meaning: 'An agent opened more sessions to one node than allowed; the oldest was closed.',
  },
  INSITU_TUNNEL_EJECTED: {
    status: 503,
    meaning: 'A session failed or missed PINGs and was taken out of load balancing for a while.',
  },
  INSITU_TUNNEL_COMMAND_FAILED: { status: 502, meaning: 'The agent could not run a control command.' },
  INSITU_TUNNEL_UNKNOWN_COMMAND: { status: 404, meaning: 'The agent has no handler for this control command.' },

  // Database manager
  INSITU_DBMANAGER_NOT_LEADER: {
    status: 503,
    meaning: 'This dbmanager is not the elected one; the details name the leader to ask.',
  },
  INSITU_DBMANAGER_NO_LEADER: { status: 503, meaning: 'No dbmanager is elected (or none can be reached) right now.' },
  INSITU_DBMANAGER_MEMBER_NOT_FOUND: {
    status: 404,
    meaning: 'No database member has this name in the dbmanager config.',
  },
  INSITU_DBMANAGER_SWITCHOVER_REFUSED: {
    status: 409,
    meaning: 'The switchover was refused before anything changed: the target or the primary is not healthy enough.',
  },
  INSITU_DBMANAGER_SWITCHOVER_FAILED: {
    status: 503,
    meaning: 'The switchover started but could not finish; the details say what was rolled back.',
  },
  INSITU_OPERATOR_SPEC_INVALID: {
    status: 400,
    meaning: 'The cluster spec (cluster.yaml) is malformed or inconsistent; nothing was stored.',
  },
  INSITU_OPERATOR_UNKNOWN_SERVICE: {
    status: 404,
    meaning: 'No platform service of this name is in the cluster spec, or no node runs it.',
  },
  INSITU_OPERATOR_NO_LEADER: {
    status: 503,
    meaning: 'No operator leader is elected right now, so the request cannot be carried out; retry shortly.',
  },
  INSITU_OPERATOR_COMMAND_FAILED: {
    status: 409,
    meaning: 'An operator command (a restart) stopped before it finished; the details say where and why.',
  },
  INSITU_INTERNAL: { status: 500, meaning: 'An unexpected error; the request id finds it in the logs.' },

  // Agent: data API, bundles, sandbox and application instances
  INSITU_DATASET_NOT_DECLARED: {
    status: 403,
    meaning: "The application's manifest does not declare this dataset, so the data API refuses to read it.",
  },
  INSITU_DATA_QUERY_INVALID: {
    status: 400,
    meaning: 'A data API request names an unknown column, operator or aggregate, or a value of the wrong type.',
  },
  INSITU_DATA_QUERY_TIMEOUT: {
    status: 504,
    meaning: "A data API query ran past the agent's per-query time limit and was cancelled.",
  },
  INSITU_POLICY_AGGREGATES_ONLY: {
    status: 403,
    meaning:
      "The dataset's output policy allows only grouped aggregates: a row-level read (or min/max without a minimum group size) is refused.",
  },
  INSITU_POLICY_COLUMN_PROTECTED: {
    status: 403,
    meaning:
      "The query would project, aggregate (beyond count) or order by a column the dataset's output policy keeps inside the provider (neverLeave).",
  },
  INSITU_POLICY_NOISE_UNSUPPORTED: {
    status: 403,
    meaning:
      'The dataset answers with noise: only count, and sum of a column with a declared bound, can be asked for (no avg, min, max or row reads).',
  },
  INSITU_POLICY_BUDGET_SPENT: {
    status: 403,
    meaning: 'The privacy budget (epsilon) of this caller on this dataset is spent: no more noised answers.',
  },
  INSITU_DATA_SOURCE_UNAVAILABLE: { status: 503, meaning: 'The agent cannot reach or read a configured data source.' },
  INSITU_BUNDLE_INVALID: {
    status: 400,
    meaning: 'An application bundle or its insitu.json manifest is malformed, unsafe or incomplete.',
  },
  INSITU_BUNDLE_DIGEST_MISMATCH: {
    status: 409,
    meaning: "A fetched bundle's sha256 differs from the approved digest; it is refused and not started.",
  },
  INSITU_SANDBOX_UNAVAILABLE: {
    status: 503,
    meaning: 'The sandbox (bubblewrap) cannot run here, or running without it is not allowed by the agent config.',
  },
  INSITU_APP_UNAVAILABLE: {
    status: 503,
    meaning: 'No healthy instance of the application can take the request on this agent.',
  },
  INSITU_APP_TIMEOUT: { status: 504, meaning: 'The application did not answer within its request timeout.' },

  // Applications, approvals, deployments, services, keys and the gateway
  INSITU_BUNDLE_TOO_LARGE: {
    status: 413,
    meaning: 'An application bundle holds more bytes or entries than the platform accepts.',
  },
  INSITU_APP_NOT_FOUND: { status: 404, meaning: 'The application does not exist or the caller may not see it.' },
  INSITU_VERSION_NOT_FOUND: {
    status: 404,
    meaning: 'The application version does not exist or the caller may not see it.',
  },
  INSITU_APPROVAL_NOT_FOUND: {
    status: 404,
    meaning: 'The approval request does not exist or is not addressed to the caller.',
  },
  INSITU_APP_NOT_APPROVED: {
    status: 409,
    meaning: 'Every provider whose data the version reads must approve its exact digest before it runs.',
  },
  INSITU_DEPLOYMENT_NOT_FOUND: { status: 404, meaning: 'The deployment does not exist or the caller may not see it.' },
  INSITU_JOB_NOT_FOUND: { status: 404, meaning: 'The job does not exist or the caller may not see it.' },
  INSITU_JOB_RESULT_NOT_FOUND: { status: 404, meaning: 'The job has no result file of that name.' },
  INSITU_JOB_RESULT_EXPIRED: {
    status: 410,
    meaning: "The job's results were deleted when its retention period (jobs.retentionHours) ended.",
  },
  INSITU_JOB_QUOTA_EXCEEDED: {
    status: 429,
    meaning:
      'The organisation has as many unfinished jobs as the platform allows (jobs.maxActivePerOrg); wait for one to end.',
  },
  INSITU_JOB_NOT_A_JOB: {
    status: 409,
    meaning: 'The version does not declare "kind": "job" in insitu.json, so it cannot run as a job.',
  },
  INSITU_JOB_RESULT_REFUSED: {
    status: 413,
    meaning: "A job's result broke the provider's result policy (size, count or type) or the platform's size limit.",
  },
  INSITU_SERVICE_NOT_FOUND: {
    status: 404,
    meaning: 'No published service has this name, or the caller may not see it.',
  },
  INSITU_SERVICE_UNAVAILABLE: {
    status: 503,
    meaning: 'The service has no running version (of the requested major) at any provider right now.',
  },
  INSITU_KEY_NOT_FOUND: { status: 404, meaning: 'The API key does not exist or the caller may not see it.' },
  INSITU_KEY_INVALID: { status: 401, meaning: 'The API key is missing, unknown, expired or revoked.' },
  INSITU_KEY_FORBIDDEN: {
    status: 403,
    meaning:
      "The API key is not scoped to this service, or the service's owner has not granted the key's organisation access.",
  },
  INSITU_RATE_LIMITED: {
    status: 429,
    meaning: "The key exceeded the service's rate limit; Retry-After says when to try again.",
  },
  INSITU_QUOTA_EXCEEDED: {
    status: 429,
    meaning: 'The key used up its daily quota for the service; Retry-After says when the quota resets (00:00 UTC).',
  },
  INSITU_RESPONSE_TOO_LARGE: {
    status: 502,
    meaning: 'The application answered with more bytes than the service allows; the answer was cut off.',
  },
  INSITU_GATEWAY_TIMEOUT: { status: 504, meaning: "The call did not complete within the service's deadline." },
  INSITU_RESPONSE_ABORTED: {
    status: 502,
    meaning: "The application's answer broke off after its headers were sent (recorded in usage and audit).",
  },
  INSITU_CALLER_GONE: {
    status: 400,
    meaning:
      'The caller closed the connection before the answer was complete (recorded in usage and audit; never sent).',
  },
  INSITU_AUDIT_BROKEN: {
    status: 500,
    meaning:
      'The audit log does not verify: a record was edited, deleted, forged or reordered, or the log no longer holds what a signed anchor vouches for (rewritten, truncated or emptied).',
  },
} as const satisfies Record<string, { status: number; meaning: string }>;

/** A stable error code, e.g. `INSITU_DATASET_NOT_FOUND`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of ours. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
