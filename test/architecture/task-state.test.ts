import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function productionFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return productionFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** The testkit is test support, like test/: its harnesses may drive the event bus by hand. */
const sources = readdirSync(path.join(root, 'packages'))
  .filter((pkg) => pkg !== 'testkit')
  .flatMap((pkg) =>
    productionFiles(path.join(root, 'packages', pkg, 'src')).map((file) => ({
      file: path.relative(root, file),
      text: readFileSync(file, 'utf8'),
    })),
  );

const LIFECYCLE = 'packages/cloud/src/tasks/task-lifecycle.ts';
const REPOSITORY = 'packages/cloud/src/db/repositories/task-repository.ts';

/**
 * Ways to change a task's state, each with the only files allowed to use it.
 * Retention re-creates an archived row as it was (a restore, not a status change).
 */
const DOORS: { name: string; pattern: RegExp; allowed: string[] }[] = [
  { name: 'repository status transition', pattern: /\.\s*transition\s*\(/g, allowed: [LIFECYCLE] },
  { name: 'task event emitted', pattern: /\.\s*emit\s*\(\s*['"`]task\./g, allowed: [LIFECYCLE] },
  {
    name: 'task row created',
    pattern: /(?<!lifecycle\.)\btasks\s*\.\s*create\s*\(/g,
    allowed: [LIFECYCLE, 'packages/cloud/src/retention/retention-service.ts'],
  },
  {
    name: 'tasks table written in SQL',
    pattern: /(?:updateTable|insertInto)\s*\(\s*['"]tasks['"]/g,
    allowed: [REPOSITORY],
  },
];

function uses(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

describe('one door for task state', () => {
  it('finds the production sources and the lifecycle itself using every door', () => {
    expect(sources.length).toBeGreaterThan(100);
    const lifecycle = sources.find((s) => s.file === LIFECYCLE)?.text ?? '';
    for (const door of DOORS.slice(0, 3)) expect(uses(lifecycle, door.pattern), door.name).toBeGreaterThan(0);
    const repository = sources.find((s) => s.file === REPOSITORY)?.text ?? '';
    expect(uses(repository, DOORS[3]!.pattern)).toBeGreaterThan(0);
  });

  it('recognises a by-hand status change however it is laid out', () => {
    const byHand = `await context.repos.tasks\n  .transition(task.id, 'cancelled', {});\nevents?.emit( "task.cancelled", x);\nawait tx.tasks.create(t);\ndb.updateTable('tasks')`;
    expect(DOORS.map((d) => uses(byHand, d.pattern))).toEqual([1, 1, 1, 1]);
  });

  it('no module other than TaskLifecycle moves a task or emits its events', () => {
    const offenders = sources.flatMap((s) =>
      DOORS.filter((d) => !d.allowed.includes(s.file) && uses(s.text, d.pattern) > 0).map(
        (d) => `${s.file}: ${d.name}`,
      ),
    );
    expect(offenders).toEqual([]);
  });
});
