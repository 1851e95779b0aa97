import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPermissionGate, physicalPath, summarize } from './permissions.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function layout() {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'bematic-perm-')));
  dirs.push(root);
  const cwd = join(root, 'wt');
  const project = join(root, 'project');
  const other = join(root, 'other');
  for (const d of [cwd, project, other]) mkdirSync(d);
  symlinkSync(other, join(cwd, 'link'));
  return { root, cwd, project, other };
}

const signal = new AbortController().signal;

describe('physicalPath', () => {
  it('follows links and .. the way the file system does, also for files that do not exist yet', async () => {
    const { cwd, other, root } = layout();
    expect(await physicalPath('link/new.txt', cwd)).toBe(join(other, 'new.txt'));
    expect(await physicalPath('link/../x', cwd)).toBe(join(root, 'x'));
    expect(await physicalPath('../wt/./a/b', cwd)).toBe(join(cwd, 'a', 'b'));
    expect(await physicalPath(join(cwd, 'ok.txt'), '/')).toBe(join(cwd, 'ok.txt'));
  });
});

describe('createPermissionGate', () => {
  it('refuses file tools outside, without asking; allows inside; reads may reach the project', async () => {
    const { cwd, project, other } = layout();
    const asked: string[] = [];
    const gate = createPermissionGate({
      scope: { cwd, projectPath: project, tmpDir: '/tmp/x' },
      sandbox: 'on',
      secrets: [],
      ask: async (r) => {
        asked.push(r.summary);
        return 'approved';
      },
    });
    const decide = async (tool: string, input: Record<string, unknown>) =>
      (await gate(tool, input, { signal, toolUseID: 'x' } as never))?.behavior;
    expect(await decide('Write', { file_path: 'link/evil.txt', content: '' })).toBe('deny');
    expect(await decide('Edit', { file_path: join(project, 'a.ts') })).toBe('deny');
    expect(await decide('Read', { file_path: join(project, 'a.ts') })).toBe('allow');
    expect(await decide('Read', { file_path: join(other, 'secret') })).toBe('deny');
    expect(await decide('Glob', { pattern: `${other}/**` })).toBe('deny');
    expect(await decide('Grep', { pattern: '/etc/passwd', path: cwd })).toBe('allow');
    expect(await decide('Write', { file_path: 'src/new.ts', content: '' })).toBe('allow');
    expect(asked).toEqual([]);
    expect(await decide('Bash', { command: 'git push', dangerouslyDisableSandbox: true })).toBe('allow');
    expect(asked).toEqual(['git push']);
  });

  it('shows people a redacted summary', () => {
    expect(summarize('SandboxNetworkAccess', { host: 'registry.npmjs.org', port: 443 })).toBe(
      'registry.npmjs.org:443',
    );
    expect(summarize('Bash', { command: 'npm install left-pad' })).toBe('npm install left-pad');
  });
});
