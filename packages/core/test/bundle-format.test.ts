import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { InsituError, bundleDigestOf, canonicalTar, readBundleTar, type BundleEntry } from '../src/index.js';

const limits = { maxBytes: 1024 * 1024, maxEntries: 100 };
const file = (path: string, text: string, executable = false): BundleEntry => ({
  path,
  kind: 'file',
  executable,
  data: Buffer.from(text),
});

/** A raw ustar header for hostile entries our writer refuses to produce. */
function rawEntry(name: string, type: string, body = '', link = ''): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write(type, 156);
  header.write(link, 157, 100);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, Buffer.from(body), pad]);
}
const tarOf = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.alloc(1024)]);

async function refused(bytes: Buffer, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readBundleTar(bytes, limits), (error: unknown) => {
    assert.ok(error instanceof InsituError);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('bundle format', () => {
  it('gives the same digest for the same files, whatever their order, gzip, or missing directory entries', async () => {
    const entries = [
      file('insitu.json', '{}'),
      { path: 'lib', kind: 'dir', executable: true } as BundleEntry,
      file('lib/a.js', 'a'),
      file('run.sh', '#!/bin/sh\n', true),
    ];
    const canonical = canonicalTar(entries);
    const digest = bundleDigestOf(entries);
    assert.equal(bundleDigestOf([...entries].reverse()), digest);
    const read = await readBundleTar(canonical, limits);
    assert.equal(bundleDigestOf(read), digest);
    assert.equal(bundleDigestOf(await readBundleTar(gzipSync(canonical), limits)), digest, 'gzip is accepted');
    const withoutDir = canonicalTar(entries.filter((e) => e.kind !== 'dir'));
    assert.equal(bundleDigestOf(await readBundleTar(withoutDir, limits)), digest, 'implied directories are added');
    assert.notEqual(
      bundleDigestOf([...entries.slice(0, 3), file('run.sh', '#!/bin/sh\n', false)]),
      digest,
      'the executable bit counts',
    );
    assert.equal(read.find((e) => e.path === 'run.sh')?.executable, true);
  });

  it('refuses paths that leave the bundle, special files, escaping links, duplicates and garbage', async () => {
    await refused(tarOf(rawEntry('../evil', '0', 'x')), 'INSITU_BUNDLE_INVALID', /not an allowed path/);
    await refused(tarOf(rawEntry('/etc/passwd', '0', 'x')), 'INSITU_BUNDLE_INVALID', /not an allowed path/);
    await refused(tarOf(rawEntry('a/../../b', '0', 'x')), 'INSITU_BUNDLE_INVALID', /not an allowed path/);
    await refused(tarOf(rawEntry('dev', '3')), 'INSITU_BUNDLE_INVALID', /only files, directories/);
    await refused(tarOf(rawEntry('link', '2', '', '../../etc/shadow')), 'INSITU_BUNDLE_INVALID', /leaves the bundle/);
    await refused(tarOf(rawEntry('link', '2', '', '/etc/shadow')), 'INSITU_BUNDLE_INVALID', /leaves the bundle/);
    await refused(tarOf(rawEntry('a', '0', 'x'), rawEntry('a', '0', 'y')), 'INSITU_BUNDLE_INVALID', /twice/);
    await refused(Buffer.from('definitely not a tarball'.repeat(40)), 'INSITU_BUNDLE_INVALID', /tarball/);
    await refused(Buffer.alloc(0), 'INSITU_BUNDLE_INVALID', /empty|tarball/);
  });

  it('stops at the size and entry limits', async () => {
    const big = canonicalTar([file('big', 'x'.repeat(2000))]);
    await assert.rejects(readBundleTar(big, { maxBytes: 1000, maxEntries: 10 }), { code: 'INSITU_BUNDLE_TOO_LARGE' });
    const many = canonicalTar(Array.from({ length: 20 }, (_, i) => file(`f${i}`, 'x')));
    await assert.rejects(readBundleTar(many, { maxBytes: 1000, maxEntries: 10 }), { code: 'INSITU_BUNDLE_TOO_LARGE' });
  });
});
