// A ustar writer, so a dropped or chosen folder can be sent as the tarball the API takes.

export interface TarEntry {
  path: string;
  data: Uint8Array;
}

const encoder = new TextEncoder();

function field(block: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new Error(`tar: "${text}" is too long for the archive header`);
  block.set(bytes, offset);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

function header(path: string, size: number): Uint8Array {
  const block = new Uint8Array(512);
  let name = path;
  let prefix = '';
  if (encoder.encode(name).length > 100) {
    const cut = path.lastIndexOf('/', 155);
    if (cut <= 0) throw new Error(`tar: path too long: ${path}`);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  field(block, 0, 100, name);
  field(block, 100, 8, octal(0o644, 8));
  field(block, 108, 8, octal(0, 8));
  field(block, 116, 8, octal(0, 8));
  field(block, 124, 12, octal(size, 12));
  field(block, 136, 12, octal(0, 12));
  field(block, 148, 8, '        ');
  field(block, 156, 1, '0');
  field(block, 257, 6, 'ustar\0');
  field(block, 263, 2, '00');
  field(block, 345, 155, prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  field(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

export function tarOf(entries: TarEntry[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const entry of [...entries].sort((a, b) => a.path.localeCompare(b.path))) {
    parts.push(header(entry.path, entry.data.length), entry.data);
    const pad = (512 - (entry.data.length % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(new ArrayBuffer(total));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Files of a chosen folder (`webkitdirectory`), their paths relative to it. */
export async function folderEntries(files: FileList): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for (const file of Array.from(files)) {
    const relative = (file.webkitRelativePath || file.name).split('/').slice(1).join('/') || file.name;
    out.push({ path: relative, data: new Uint8Array(await file.arrayBuffer()) });
  }
  return out;
}
