import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PathValidator } from './path-validator.js';

const base = realpathSync(mkdtempSync(path.join(tmpdir(), 'bematic-paths-')));
const root = path.join(base, 'root');
const outside = path.join(base, 'outside');
mkdirSync(path.join(root, 'project', 'src'), { recursive: true });
mkdirSync(outside);
mkdirSync(path.join(base, 'root-sibling'));
writeFileSync(path.join(root, 'file.txt'), 'x');
symlinkSync(outside, path.join(root, 'escape'));
symlinkSync(path.join(root, 'project'), path.join(outside, 'into-root'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('PathValidator', () => {
  const v = new PathValidator([root]);

  it('accepts the root and directories inside it', async () => {
    expect(await v.validate(root)).toMatchObject({ ok: true });
    expect(await v.validate(path.join(root, 'project', 'src'))).toMatchObject({ ok: true });
  });

  it.each([
    ['a `..` escape', () => path.join(root, 'project', '..', '..', 'outside')],
    ['a symlink pointing outside', () => path.join(root, 'escape')],
    ['a sibling sharing the prefix', () => path.join(base, 'root-sibling')],
    ['a missing directory', () => path.join(root, 'nope')],
    ['a file', () => path.join(root, 'file.txt')],
    ['a relative path', () => 'root/project'],
  ])('rejects %s', async (_label, p) => {
    const result = await v.validate(p());
    expect(result.ok).toBe(false);
  });

  it('accepts a symlink from outside that resolves inside a root, reporting the real path', async () => {
    const result = await v.validate(path.join(outside, 'into-root'));
    expect(result).toEqual({ ok: true, realPath: path.join(root, 'project') });
  });

  it('works with roots that are themselves symlinks', async () => {
    const linkRoot = path.join(base, 'link-root');
    symlinkSync(root, linkRoot);
    const viaLink = new PathValidator([linkRoot]);
    expect(await viaLink.validate(path.join(root, 'project'))).toMatchObject({ ok: true });
    expect((await viaLink.validate(outside)).ok).toBe(false);
  });
});
