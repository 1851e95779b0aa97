import { AGENT_SETTINGS } from '@bematic/agent';
import { CLOUD_SETTINGS } from '@bematic/cloud';
import { type Setting, settingsMarkdown } from '@bematic/protocol';

/** The README regions generated from the settings lists, by marker name. */
export const SETTINGS_TABLES: Record<string, readonly Setting[]> = {
  cloud: CLOUD_SETTINGS,
  agent: AGENT_SETTINGS,
};

const region = (name: string) =>
  new RegExp(`(<!-- settings:${name} -->\\n)[\\s\\S]*?(\\n<!-- /settings:${name} -->)`);

/** Rewrites every settings table in the README from the schema; throws when a marker is missing. */
export function renderSettingsTables(readme: string): string {
  let out = readme;
  for (const [name, settings] of Object.entries(SETTINGS_TABLES)) {
    const re = region(name);
    if (!re.test(out))
      throw new Error(`README has no <!-- settings:${name} --> … <!-- /settings:${name} --> region`);
    out = out.replace(
      re,
      (_m, open: string, close: string) => `${open}${settingsMarkdown(settings)}${close}`,
    );
  }
  return out;
}
