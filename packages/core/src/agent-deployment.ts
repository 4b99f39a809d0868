/**
 * A deployment as the platform sends it to a provider's agents (`GET
 * /api/v1/agents/self/desired` and the tunnel's `desired` command): the one wire shape
 * the server writes and the agent reads.
 */
export interface AgentDeployment {
  id: string;
  app: string;
  version: string;
  /** The approved sha256 of the bundle's canonical tarball. */
  digest: string;
  replicas: number;
  /** Platform path to fetch the bundle from with the agent credential. */
  bundle: string;
  state: 'active' | 'draining';
}
