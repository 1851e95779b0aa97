import { z } from 'zod';

/**
 * One environment variable: how it is validated, its default and what it means.
 * Cloud and agent declare their settings as a list of these; start-up reads them
 * with `readSettings`, and the README tables are rendered from the same list.
 */
export interface Setting<N extends string = string, S extends z.ZodType = z.ZodType> {
  name: N;
  /** Validates the raw value (a string, or undefined when unset and without default). */
  schema: S;
  /** The raw value used when the variable is unset or empty. The one place a default lives. */
  default?: string;
  /** Shown instead of `default` when the default depends on the machine (e.g. the current directory). */
  defaultDoc?: string;
  /** A credential: `bematic config` shows only whether it is set. */
  secret?: boolean;
  doc: string;
}

export type SettingsValues<T extends readonly Setting[]> = {
  [S in T[number] as S['name']]: z.output<S['schema']>;
};

/** Declares a settings list, keeping each name's literal type for `SettingsValues`. */
export function defineSettings<const T extends readonly Setting[]>(settings: T): T {
  return settings;
}

export type SettingsResult<T extends readonly Setting[]> =
  | { ok: true; values: SettingsValues<T> }
  | { ok: false; problems: string[]; values: Partial<SettingsValues<T>> };

/**
 * Reads every setting from `env` (an empty variable counts as unset), applying
 * defaults, and collects every problem at once. Each problem starts with the
 * variable's name.
 */
export function readSettings<T extends readonly Setting[]>(
  settings: T,
  env: Record<string, string | undefined>,
  overrides: Record<string, string | undefined> = {},
): SettingsResult<T> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const setting of settings) {
    const given = overrides[setting.name] ?? env[setting.name];
    const raw = given === '' || given === undefined ? setting.default : given;
    const parsed = setting.schema.safeParse(raw);
    if (parsed.success) values[setting.name] = parsed.data;
    else problems.push(describeProblem(setting.name, raw, parsed.error));
  }
  return problems.length === 0
    ? { ok: true, values: values as SettingsValues<T> }
    : { ok: false, problems, values: values as Partial<SettingsValues<T>> };
}

function describeProblem(name: string, raw: string | undefined, error: z.ZodError): string {
  const messages = error.issues.map((i) => i.message);
  // Messages written for one setting already name it; generic ones get the name and the value.
  if (messages.every((m) => m.startsWith(name))) return messages.join('; ');
  return `${name}: ${messages.join('; ')} (got ${JSON.stringify(raw)})`;
}

/** The README table of a settings list. */
export function settingsMarkdown(settings: readonly Setting[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = settings.map((s) => {
    const def = s.default !== undefined && s.default !== '' ? `\`${s.default}\`` : (s.defaultDoc ?? '—');
    return `| \`${s.name}\` | ${cell(def)} | ${cell(s.doc)} |`;
  });
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** Schema helpers shared by both settings lists. */
export const settingSchemas = {
  int: (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max),
  number: (min: number) => z.coerce.number().min(min),
  /** An integer with a message that names the variable and the accepted range. */
  boundedInt: (name: string, min: number, max: number) =>
    z
      .string()
      .trim()
      .transform((v, ctx) => {
        const n = Number(v);
        if (v === '' || !Number.isInteger(n) || n < min || n > max) {
          ctx.addIssue({
            code: 'custom',
            message: `${name} must be an integer from ${min} to ${max}, got "${v}"`,
          });
          return z.NEVER;
        }
        return n;
      }),
  required: (name: string, hint: string) =>
    z
      .string({ error: `${name} is required (${hint})` })
      .trim()
      .min(1, `${name} is required (${hint})`),
};

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** How a process logs: the same two settings for `bematic cloud`, `up` and `agent`. */
export const LOG_SETTINGS = [
  {
    name: 'BEMATIC_LOG_LEVEL',
    schema: z.enum(LOG_LEVELS),
    default: 'info',
    doc: 'Log level',
  },
  {
    name: 'BEMATIC_LOG_FORMAT',
    schema: z.enum(LOG_FORMATS),
    default: 'auto',
    doc: '`pretty` (human-readable), `json` (one JSON object per line, for log shippers) or `auto`: pretty on a terminal, JSON otherwise',
  },
] as const;
