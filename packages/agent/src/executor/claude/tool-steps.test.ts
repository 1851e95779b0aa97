import { describe, expect, it } from 'vitest';
import { bashCommand, changedFilePath, describeToolUse } from './tool-steps.js';

const cwd = '/repo/app';

describe('describeToolUse', () => {
  it.each([
    ['Edit', { file_path: '/repo/app/src/auth.ts' }, 'Editing src/auth.ts'],
    ['MultiEdit', { file_path: 'src/a.ts' }, 'Editing src/a.ts'],
    ['Write', { file_path: '/repo/app/src/x.ts', content: '' }, 'Writing src/x.ts'],
    ['Read', { file_path: '/repo/app/README.md' }, 'Reading README.md'],
    ['Read', { file_path: '/etc/hosts' }, 'Reading /etc/hosts'],
    ['NotebookEdit', { notebook_path: '/repo/app/n.ipynb' }, 'Editing notebook n.ipynb'],
    ['Bash', { command: 'npm test' }, 'Running npm test'],
    ['Bash', { command: 'npm ci\nnpm test' }, 'Running npm ci …'],
    ['Grep', { pattern: 'foo' }, "Searching for 'foo'"],
    ['Grep', { pattern: 'foo', path: '/repo/app/src' }, "Searching for 'foo' in src"],
    ['Glob', { pattern: '**/*.ts' }, "Finding files matching '**/*.ts'"],
    ['WebFetch', { url: 'https://example.com' }, 'Fetching https://example.com'],
    ['TodoWrite', { todos: [] }, 'Updating the plan'],
    ['Write', 'not an object', 'Writing a file'],
    ['mcp__x__y', {}, 'Using mcp__x__y'],
  ])('%s %j → %s', (tool, input, step) => {
    expect(describeToolUse(tool, input, cwd)).toBe(step);
  });

  it('clips very long commands', () => {
    const step = describeToolUse('Bash', { command: `echo ${'x'.repeat(500)}` }, cwd);
    expect(step.length).toBeLessThanOrEqual('Running '.length + 120);
    expect(step.endsWith('…')).toBe(true);
  });
});

describe('tool input extraction', () => {
  it('finds Bash commands and changed files only for the right tools', () => {
    expect(bashCommand('Bash', { command: 'ls' })).toBe('ls');
    expect(bashCommand('Read', { command: 'ls' })).toBeUndefined();
    expect(changedFilePath('Edit', { file_path: 'a.ts' })).toBe('a.ts');
    expect(changedFilePath('NotebookEdit', { notebook_path: 'n.ipynb' })).toBe('n.ipynb');
    expect(changedFilePath('Read', { file_path: 'a.ts' })).toBeUndefined();
  });
});
