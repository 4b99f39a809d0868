import { InsituError } from '@insitu/core';
import type { Silence } from './records.js';

/** Labels an alert can be matched on. */
export const ALERT_LABELS = ['condition', 'subject', 'node', 'service', 'severity'] as const;
export type AlertLabel = (typeof ALERT_LABELS)[number];

/**
 * Parse `label=value[,label=value…]` (also separated by spaces), e.g.
 * `condition=service-failed,node=node2`; a value may use `*` as a wildcard. A bare word
 * is a condition (`node-lost`). Unknown labels are refused with the list of known ones.
 */
export function parseMatchers(text: string): Silence['matchers'] {
  const parts = text.split(/[\s,]+/).filter((part) => part.length > 0);
  if (parts.length === 0)
    throw new InsituError(
      'INSITU_USAGE',
      'a silence needs a matcher, e.g. node=node2 or condition=service-failed,service=server',
    );
  return parts.map((part) => {
    const eq = part.indexOf('=');
    const label = eq < 0 ? 'condition' : part.slice(0, eq);
    const value = eq < 0 ? part : part.slice(eq + 1);
    if (!(ALERT_LABELS as readonly string[]).includes(label)) {
      throw new InsituError(
        'INSITU_USAGE',
        `unknown alert label "${label}" in "${part}"; labels: ${ALERT_LABELS.join(', ')}`,
      );
    }
    if (!/^[A-Za-z0-9@._*:-]{1,200}$/.test(value))
      throw new InsituError('INSITU_USAGE', `bad value in matcher "${part}": letters, digits, @ . _ : - and * only`);
    return { label, value };
  });
}

/** Does `pattern` (with `*` wildcards) match `value` entirely? Linear: no regular expression is built from user input. */
export function globMatch(pattern: string, value: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === value;
  const first = pieces[0] ?? '';
  const last = pieces[pieces.length - 1] ?? '';
  if (!value.startsWith(first) || value.length < first.length + last.length || !value.endsWith(last)) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = value.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

/** Is a silence in force at `now` and does it match every label it names? */
export function silenceMatches(silence: Silence, labels: Partial<Record<AlertLabel, string>>, now: number): boolean {
  if (Date.parse(silence.endsAt) <= now) return false;
  return silence.matchers.every((m) => globMatch(m.value, labels[m.label as AlertLabel] ?? ''));
}

/** `2h`, `30m`, `90s`, `1d` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,6})(s|m|h|d)$/.exec(text.trim());
  if (!match) throw new InsituError('INSITU_USAGE', `"${text}" is not a duration like 90s, 30m, 2h or 1d`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (ms <= 0 || ms > 90 * 86_400_000) throw new InsituError('INSITU_USAGE', 'a silence lasts from 1 s to 90 days');
  return ms;
}
