import Type from 'typebox';

/** An id of ours (`prefix_` + 26 base32 characters). */
export const IdSchema = Type.String({ pattern: '^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$', description: 'An Insitu id' });

/** A point in time, ISO 8601 in UTC. */
export const TimestampSchema = Type.String({ format: 'date-time', description: 'ISO 8601 timestamp (UTC)' });

/** A short machine name: letters, digits, `-`, `_`, `.`; starts with a letter or digit. */
export const SlugSchema = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'Lower-case name: a-z, 0-9, ".", "_", "-"' });

/** The error body of every failed request. */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable code, INSITU_...' }),
      message: Type.String(),
      requestId: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { description: 'Every error: a stable code, a message and the request id' },
);

/** Query parameters of every list endpoint. */
export const PageQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page (1-100)' })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'Opaque cursor from the previous page' })),
});

/** Wraps a list of items with the cursor of the next page (absent on the last page). */
export function PageSchema<T extends Type.TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    nextCursor: Type.Optional(Type.String()),
  });
}
