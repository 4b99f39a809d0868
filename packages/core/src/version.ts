/** Version of the platform, as reported by the API, the agent's hello and `insitu --version`. */
export const VERSION = '0.1.0';
