const MAX_TOKEN = 60;

function words(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
}

function camelParts(word: string): string[] {
  const parts = word
    .replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2')
    .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1 $2')
    .replace(/(\p{L})(\p{N})/gu, '$1 $2')
    .replace(/(\p{N})(\p{L})/gu, '$1 $2')
    .split(' ');
  return parts.length > 1 ? parts : [];
}

/**
 * Search tokens of a text, as both dialects index them: lower case, accents removed,
 * split on anything that is not a letter or digit, and camelCase/letter-digit runs
 * split too (`orderDate2` → `orderdate2 order date 2`). Tokens are capped at 60
 * characters (InnoDB's FULLTEXT limit is 84).
 */
export function searchTokens(text: string): string[] {
  const out: string[] = [];
  for (const word of words(text)) {
    out.push(word.toLowerCase().slice(0, MAX_TOKEN));
    for (const part of camelParts(word)) out.push(part.toLowerCase().slice(0, MAX_TOKEN));
  }
  return out;
}

/** A name as plain words (`customer_orders`, `Customer Orders` → `customer orders`), to find exact name matches. */
export function normalizedName(text: string): string {
  return words(text)
    .map((w) => w.toLowerCase())
    .join(' ')
    .slice(0, 255);
}

/** Distinct tokens of a search query, at most `max` of them. */
export function queryTokens(query: string, max = 8): string[] {
  return [...new Set(words(query).map((w) => w.toLowerCase().slice(0, MAX_TOKEN)))].slice(0, max);
}

/**
 * InnoDB FULLTEXT ignores tokens shorter than `innodb_ft_min_token_size` (3 by default)
 * and a list of stopwords. Prefixing every token with `ww` makes each one at least three
 * characters long and never a stopword, so the default MariaDB settings index `id`,
 * `eu` and `the` like any other word. Queries carry the same prefix.
 */
export const MYSQL_TOKEN_PREFIX = 'ww';

/** A search document for MariaDB: tokens, each prefixed. */
export function mysqlDoc(tokens: readonly string[]): string {
  return tokens.map((t) => MYSQL_TOKEN_PREFIX + t).join(' ');
}

/** Boolean-mode query: every token required, as a prefix. */
export function mysqlQuery(tokens: readonly string[]): string {
  return tokens.map((t) => `+${MYSQL_TOKEN_PREFIX}${t}*`).join(' ');
}

/** FTS5 query: every token required, as a prefix. Tokens hold only letters and digits. */
export function fts5Query(tokens: readonly string[]): string {
  return tokens.map((t) => `"${t}"*`).join(' AND ');
}
