/** The SQL engines the platform database runs on. */
export type Dialect = 'sqlite' | 'mysql';
