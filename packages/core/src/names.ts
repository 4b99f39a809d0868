import { isId, type IdPrefix } from './ids.js';

/**
 * The shape of every id: `prefix_` + 26 lower-case Crockford base32 characters. A name of
 * ours never has this shape (organisation, provider, application and service names never
 * contain `_`; a dataset name may, but is refused when it has this shape), so a string is
 * an id or a name, never both.
 */
export const ID_SHAPE = '[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}';

/** How a reference someone typed (a flag, a manifest entry, a query parameter) is read. */
export type RefKind = 'id' | 'name' | 'foreign-id';

/**
 * The one rule by which a reference that may be an id or a name is read, on the platform,
 * the agent and the command line alike: a string with the shape of an id with `prefix`
 * is that id and is looked up by id only; a string with the shape of another kind's id
 * (`org_…` where a provider is expected) names nothing; anything else is a name and is
 * looked up by name only. Never "by name, else by id" or the other way round: a legacy
 * row whose name has the shape of an id cannot capture a reference to that id.
 *
 * @example refKind('prv_01jf3q4v8p0000000000000000', 'prv') // 'id'
 * @example refKind('acme-data', 'prv') // 'name'
 */
export function refKind(ref: string, prefix: IdPrefix): RefKind {
  if (isId(ref, prefix)) return 'id';
  if (isId(ref)) return 'foreign-id';
  return 'name';
}

const ID_SHAPED = new RegExp(`^${ID_SHAPE}$`);

/** True when `value` has the shape of an id of any kind (what no name may have). */
export function hasIdShape(value: string): boolean {
  return ID_SHAPED.test(value);
}
