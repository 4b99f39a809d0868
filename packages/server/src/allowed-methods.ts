import type { RouteEntry } from './openapi-responses.js';

/** A route's URL pattern (`/api/v1/orgs/:id`, `/console/*`) as a regular expression over a concrete path. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => {
      if (segment === '*') return '.*';
      if (segment.startsWith(':')) return '[^/]+';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\*$/, '.*');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}

/**
 * Which methods the router has for a concrete path, for the `Allow` header of a 405:
 * a path the API has under another method is answered 405, not 404. Compiled once from
 * the routes as registered (they are complete once the server is ready).
 */
export class AllowedMethods {
  private compiled: Array<{ method: string; pattern: RegExp }> | undefined;
  constructor(private readonly routes: readonly RouteEntry[]) {}

  of(path: string): string[] {
    this.compiled ??= this.routes.map((route) => ({ method: route.method, pattern: patternOf(route.url) }));
    const methods = new Set<string>();
    for (const { method, pattern } of this.compiled) if (pattern.test(path)) methods.add(method);
    return [...methods].sort();
  }
}
