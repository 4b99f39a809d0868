/** @insitu/agent (work in progress). */
export { SqlCompiler } from './sources/sql-compiler.js';
export { planQuery } from './data-api/query-plan.js';
export { parseAgentConfig, loadAgentConfig } from './config/agent-config.js';
export { DataApiServer } from './data-api/data-api-server.js';
export { DatasetRegistry } from './sources/dataset-registry.js';
export { openSource } from './sources/open-source.js';
