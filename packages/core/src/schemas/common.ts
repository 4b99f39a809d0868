import Type from 'typebox';
import { ID_SHAPE } from '../names.js';

/** An id of ours (`prefix_` + 26 base32 characters). */
export const IdSchema = Type.String({ pattern: '^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$', description: 'An Insitu id' });

/** A point in time, ISO 8601 in UTC. */
export const TimestampSchema = Type.String({ format: 'date-time', description: 'ISO 8601 timestamp (UTC)' });

/**
 * The name of an organisation or a provider: lower-case letters, digits, `.` and `-`,
 * starting with a letter or digit. Never `_`, which every id holds, so a name can never
 * take the shape of an id (`prv_…`) and a reference is read one way only ({@link refKind}).
 */
export const SlugSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9.-]{0,62}$',
  description: 'Lower-case name: a-z, 0-9, "." and "-" (never "_": ids have it, names do not)',
});

/** The name of an application (the `name` of its insitu.json): a-z, 0-9 and `-`. */
export const AppNameSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'Application name: a-z, 0-9 and "-"',
});

/** The stable name of a service, in `/s/{name}/…`: a-z, 0-9 and `-`. */
export const ServiceNameSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'Stable name in /s/{name}/…: a-z, 0-9 and "-"',
});

/** A dataset name may hold `_` (it mirrors table names) but never the whole shape of an id. */
export const NOT_ID_SHAPED = `(?!${ID_SHAPE}$)`;

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
