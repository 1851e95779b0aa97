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

const IMPORT = /(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g;
const sources = readdirSync(path.join(root, 'packages')).flatMap((pkg) =>
  productionFiles(path.join(root, 'packages', pkg, 'src')).map((file) => ({
    pkg,
    file: path.relative(root, file),
    imports: [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m) => m[1] ?? ''),
  })),
);

/** Production code that may compose the testkit's doubles: the demo and the benchmark. */
const MAY_USE_TESTKIT = [/^packages\/cli\/src\/commands\/demo\.ts$/, /^packages\/cli\/src\/bench\//];

describe('import rules', () => {
  it('finds the production sources', () => {
    expect(sources.length).toBeGreaterThan(100);
  });

  it('production code never imports test support', () => {
    const offenders = sources.flatMap((s) =>
      s.imports.filter((i) => /(^|\/)test(\/|$)|test-support/.test(i)).map((i) => `${s.file} → ${i}`),
    );
    expect(offenders).toEqual([]);
  });

  it('only the demo and the benchmark import the testkit', () => {
    const offenders = sources
      .filter((s) => s.pkg !== 'testkit' && s.imports.includes('@bematic/testkit'))
      .filter((s) => !MAY_USE_TESTKIT.some((re) => re.test(s.file)))
      .map((s) => s.file);
    expect(offenders).toEqual([]);
  });

  it('the agent never imports the cloud', () => {
    const offenders = sources
      .filter((s) => s.pkg === 'agent' && s.imports.some((i) => i === '@bematic/cloud'))
      .map((s) => s.file);
    expect(offenders).toEqual([]);
  });
});

describe('the dashboard and the cloud', () => {
  it('the dashboard takes only types from the cloud, so nothing of it reaches the browser bundle', () => {
    const dashboard = sources.filter((s) => s.pkg === 'dashboard');
    const fromCloud = dashboard.flatMap((s) =>
      [
        ...readFileSync(path.join(root, s.file), 'utf8').matchAll(
          /^(import|export)\s+(type\s+)?[^;]*?from\s+['"]([^'"]*cloud[^'"]*)['"]/gm,
        ),
      ].map((m) => ({ file: s.file, typeOnly: m[2] !== undefined, from: m[3] })),
    );
    expect(fromCloud.length).toBeGreaterThan(0);
    expect(fromCloud.filter((i) => !i.typeOnly)).toEqual([]);
  });
  it('the dashboard declares none of the cloud types again: it imports them', () => {
    const declared = (pkg: string) =>
      sources
        .filter((s) => s.pkg === pkg)
        .flatMap((s) => [
          ...readFileSync(path.join(root, s.file), 'utf8').matchAll(/^export\s+(?:interface|type)\s+(\w+)/gm),
        ])
        .map((m) => m[1] ?? '');
    const cloud = new Set(declared('cloud'));
    const dashboardInterfaces = sources
      .filter((s) => s.pkg === 'dashboard')
      .flatMap((s) => [
        ...readFileSync(path.join(root, s.file), 'utf8').matchAll(/^export\s+interface\s+(\w+)/gm),
      ])
      .map((m) => m[1] ?? '');
    expect(cloud.has('TaskSummary')).toBe(true);
    expect(dashboardInterfaces.filter((name) => cloud.has(name))).toEqual([]);
  });
});
