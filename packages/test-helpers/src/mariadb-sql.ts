/*
 * The `mariadb` CLI has no parameter binding, so the few values that test setup puts
 * into SQL (generated passwords, host names read back from mysql.user, a database name
 * checked against a pattern) are quoted here, in one place.
 */

/** A single-quoted SQL string literal (default sql_mode, backslash escapes on). */
export function sqlString(value: string): string {
  const escaped = value.replace(/[\0\n\r\\'"\x1a]/g, (char) => {
    switch (char) {
      case '\0':
        return '\\0';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\x1a':
        return '\\Z';
      default:
        return `\\${char}`;
    }
  });
  return `'${escaped}'`;
}

/** A back-quoted identifier; only plain names are accepted, which is all tests need. */
export function sqlIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_$]{0,63}$/.test(name))
    throw new Error(`not a plain SQL identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

function unescapeBatchValue(value: string): string {
  return value.replace(/\\(.)/g, (_match, char: string) => {
    switch (char) {
      case '0':
        return '\0';
      case 'n':
        return '\n';
      case 't':
        return '\t';
      default:
        return char;
    }
  });
}

/** Parse `mariadb --batch` output (header line, then tab-separated rows) into records. */
export function parseBatchRows(output: string): Array<Record<string, string>> {
  const lines = output.split('\n').filter((line) => line.length > 0);
  const header = lines.shift();
  if (header === undefined) return [];
  const columns = header.split('\t').map(unescapeBatchValue);
  return lines.map((line) => {
    const values = line.split('\t');
    const row: Record<string, string> = {};
    columns.forEach((column, index) => {
      row[column] = unescapeBatchValue(values[index] ?? '');
    });
    return row;
  });
}
