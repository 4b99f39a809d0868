// The shapes the console reads from the REST API (its OpenAPI document is the truth;
// these name only the fields the pages use).

export type Role = 'admin' | 'provider' | 'developer' | 'user';
export interface User {
  id: string;
  email: string;
  name: string;
}
export interface Membership {
  orgId: string;
  orgName: string;
  orgStatus: string;
  roles: Role[];
}
export interface Me {
  user: User;
  platformAdmin: boolean;
  memberships: Membership[];
}

export interface Column {
  name: string;
  type: string;
  sourceType?: string;
  nullable: boolean;
  description?: string;
}
export interface Dataset {
  id: string;
  providerId: string;
  providerName: string;
  orgId: string;
  name: string;
  description: string;
  tags: string[];
  sourceKind: string;
  visibility: string;
  columns: Column[];
  rowCount: number | null;
  /** The effective output policy (core's OutputPolicy); absent from older platforms. */
  policy?: {
    aggregatesOnly?: boolean;
    minGroupSize?: number;
    neverLeave?: string[];
    maxRowsPerAnswer?: number;
    noise?: { epsilonPerQuery: number; budget: number };
  };
  syncedAt: string;
}
export interface Provider {
  id: string;
  orgId: string;
  name: string;
  displayName: string;
  description: string;
}
export interface Agent {
  id: string;
  providerId: string;
  name: string;
  hostname: string;
  version: string;
  state: string;
  lastSeenAt?: string;
}
export interface App {
  id: string;
  orgId: string;
  name: string;
  description: string;
  createdAt: string;
}
export interface ApprovalSummary {
  id: string;
  providerId: string;
  providerName: string;
  state: string;
  reason: string;
  decidedAt?: string;
}
export interface BundleFile {
  path: string;
  size: number;
  sha256: string;
  text?: string;
}
export interface Version {
  id: string;
  appId: string;
  appName: string;
  version: string;
  digest: string;
  size: number;
  state: string;
  manifest: unknown;
  files: BundleFile[];
  datasets: { providerId: string; providerName: string; dataset: string }[];
  approvals: ApprovalSummary[];
  createdAt: string;
}
export interface Approval {
  id: string;
  versionId: string;
  appId: string;
  appName: string;
  appOrgId: string;
  version: string;
  digest: string;
  providerId: string;
  providerName: string;
  state: string;
  reason: string;
  createdAt: string;
  decidedAt?: string;
}
export interface ApprovalDetail extends Approval {
  manifest: unknown;
  datasets: string[];
  files: BundleFile[];
}
export interface DeploymentAgent {
  agentId: string;
  state: string;
  reason: string;
  ready: number;
  desired: number;
  updatedAt: string;
}
export interface Deployment {
  id: string;
  appId: string;
  versionId: string;
  version: string;
  providerId: string;
  replicas: number;
  state: string;
  agents: DeploymentAgent[];
  createdAt: string;
  updatedAt: string;
}
export interface Service {
  id: string;
  name: string;
  orgId: string;
  appId: string;
  description: string;
  access: string;
  url: string;
  versions: { version: string; major: number; path: string; running: boolean }[];
  limits: Record<string, number>;
  datasets: { provider: string; providerId: string; dataset: string; datasetId?: string }[];
}
export interface Key {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  prefix: string;
  services: string[];
  state: string;
  expiresAt?: string;
  createdAt: string;
}
export interface UsageRow {
  period: string;
  keyId?: string;
  serviceId?: string;
  calls: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  avgDurationMs: number;
  /** Upper bound of the median's bucket (powers of 2 ms); absent for periods before the histogram. */
  p50Ms?: number;
  p99Ms?: number;
}
export interface AuditRecord {
  seq: number;
  ts: string;
  requestId: string;
  keyId: string;
  serviceName: string;
  version: string;
  agentId: string;
  method: string;
  status: number;
  errorCode: string;
  durationMs: number;
  bytesOut: number;
}
export interface AuditVerification {
  ok: boolean;
  records: number;
  firstBroken?: { seq: number; reason: string };
  head?: { seq: number; hash: string };
}
export interface TunnelSession {
  sessionId: string;
  agentId: string;
  providerId: string;
  nodeId: string;
  connectedAt: string;
  inFlight: number;
  rttMs: number;
  ejected: boolean;
  requests: number;
  services: { key: string }[];
}
export interface Cluster {
  nodes: { id: string; version: string; startedAt: string; role: string; services: string[] }[];
  database: { dialect: string; status: string; cluster?: string; topology?: unknown; events?: unknown[] };
  coordination: { kind: string };
  tunnel: { sessions: TunnelSession[] };
}
export interface PlatformEvent {
  seq: number;
  ts: string;
  kind: string;
  subject: string;
  message: string;
}
export interface Org {
  id: string;
  name: string;
  displayName: string;
  kind: string;
  status: string;
  createdAt: string;
}
export interface EnrolmentToken {
  id: string;
  providerId: string;
  token: string;
  expiresAt: string;
}
export interface OperatorService {
  name: string;
  state: string;
  since?: string;
  pid?: number;
  restarts: number;
  restartsInWindow: number;
  liveness?: { ok?: boolean; error?: string };
  readiness?: { ok?: boolean; error?: string };
  lastExit?: { reason?: string; at?: string };
  failed?: { reason?: string };
}
export interface OperatorView {
  leader: string | null;
  nodes: {
    node: string;
    state: 'up' | 'lost';
    leader: boolean;
    leaseAgeMs?: number;
    version?: string;
    startedAt?: string;
    services: OperatorService[];
  }[];
}
export interface OpenAlert {
  condition: string;
  subject: string;
  severity: string;
  summary: string;
  firstSeenAt?: string;
  count?: number;
  muted?: string;
}
export interface Alerts {
  leader: string | null;
  publishedAt: string | null;
  open: OpenAlert[];
  resolved: { at: string; condition: string; message: string }[];
}
export interface Silence {
  id: string;
  matchers: { label: string; value: string }[];
  createdAt: string;
  endsAt: string;
  createdBy: string;
  comment?: string;
}
