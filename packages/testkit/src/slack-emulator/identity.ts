export interface SlackIdentity {
  botToken: string;
  appToken: string;
  teamId: string;
  teamDomain: string;
  appId: string;
  botUserId: string;
  botId: string;
  botName: string;
}

export function defaultIdentity(overrides: Partial<SlackIdentity> = {}): SlackIdentity {
  return {
    botToken: 'xoxb-emulator-bot-token',
    appToken: 'xapp-emulator-app-token',
    teamId: 'T0EMULATOR',
    teamDomain: 'bematic-emulator',
    appId: 'A0EMULATOR',
    botUserId: 'U0BEMATIC',
    botId: 'B0BEMATIC',
    botName: 'bematic',
    ...overrides,
  };
}
