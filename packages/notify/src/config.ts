import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;

/**
 * Where alerts go and how they are grouped, as it appears in a component's config file
 * (the dbmanager's `notify:` section, later the operator's). Secrets are not written
 * here: an SMTP password comes from `passwordFile` or the variable named by `passwordEnv`.
 */
export const NotifyConfigSchema = Type.Object(
  {
    webhooks: Type.Array(
      Type.Object(
        {
          url: Type.String({ pattern: '^https?://', description: 'Receives a JSON POST per alert group' }),
          headers: Type.Optional(
            Type.Record(Type.String(), Type.String(), {
              description: 'Extra request headers, e.g. an authorization token',
            }),
          ),
          timeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
        },
        Closed,
      ),
      { default: [] },
    ),
    email: Type.Optional(
      Type.Object(
        {
          host: Type.String({ minLength: 1, description: 'SMTP server' }),
          port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
          secure: Type.Boolean({
            default: false,
            description: 'TLS from the first byte (port 465); otherwise STARTTLS when offered',
          }),
          requireTls: Type.Boolean({ default: false, description: 'Refuse to send without STARTTLS' }),
          user: Type.Optional(Type.String()),
          passwordFile: Type.Optional(Type.String({ description: 'File holding the SMTP password' })),
          passwordEnv: Type.Optional(
            Type.String({
              pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
              description: 'Environment variable holding the SMTP password',
            }),
          ),
          from: Type.String({ minLength: 3, description: 'Sender address' }),
          to: Type.Array(Type.String({ minLength: 3 }), { minItems: 1, description: 'Recipients' }),
          timeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
        },
        Closed,
      ),
    ),
    groupWaitMs: Type.Integer({
      minimum: 0,
      maximum: 600_000,
      default: 2000,
      description: 'Collect alerts of one group this long before sending them in one message',
    }),
    repeatIntervalMs: Type.Integer({
      minimum: 1000,
      default: 4 * 3600_000,
      description: 'Send a still-firing alert again after this long',
    }),
    groupIntervalMs: Type.Integer({
      minimum: 0,
      maximum: 24 * 3600_000,
      default: 0,
      description:
        "After a group's message, its next one (new alerts, resolutions) waits until this long after the last (Alertmanager's group_interval); 0: only the group wait",
    }),
    retry: Type.Object(
      {
        attempts: Type.Integer({ minimum: 1, maximum: 20, default: 6 }),
        initialDelayMs: Type.Integer({ minimum: 1, maximum: 60_000, default: 500 }),
        maxDelayMs: Type.Integer({ minimum: 1, maximum: 600_000, default: 30_000 }),
      },
      { ...Closed, default: {} },
    ),
  },
  { ...Closed, default: {} },
);

/** The validated `notify:` section of a config file. */
export type NotifyConfig = Static<typeof NotifyConfigSchema>;
