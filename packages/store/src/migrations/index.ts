import type { Migration, MigrationProvider } from 'kysely';
import type { Dialect } from '../dialect.js';
import { foundation } from './001-foundation.js';
import { services } from './002-services.js';
import { resolvedDatasets } from './003-resolved-datasets.js';
import { appLogs } from './004-app-logs.js';
import { datasetPolicies } from './005-dataset-policies.js';
import { jobs } from './006-jobs.js';
import { usageLatency } from './007-usage-latency.js';
import { jobUsage } from './008-job-usage.js';
import { approvalJobPolicy } from './009-approval-job-policy.js';
import { privacyBudget } from './010-privacy-budget.js';

/** All migrations, in order. Names sort; never rename or edit one that has shipped. */
export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '001-foundation': foundation(dialect),
        '002-services': services(dialect),
        '003-resolved-datasets': resolvedDatasets(dialect),
        '004-app-logs': appLogs(dialect),
        '005-dataset-policies': datasetPolicies(dialect),
        '006-jobs': jobs(dialect),
        '007-usage-latency': usageLatency(dialect),
        '008-job-usage': jobUsage(dialect),
        '009-approval-job-policy': approvalJobPolicy(dialect),
        '010-privacy-budget': privacyBudget(dialect),
      };
    },
  };
}
