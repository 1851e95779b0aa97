/** One line of the results table. */
export interface BenchRow {
  metric: string;
  value: number;
  unit: string;
  /** Baseline, bound or how it was measured. */
  notes: string;
  /** The target for this figure, when it has one ("≤ 2× relay", "< 50 ms"), and whether it is met. */
  target?: { text: string; met: boolean };
}

export interface ScenarioContext {
  /** Smaller counts, for a fast look. */
  quick: boolean;
  /** Progress line on stderr (the table goes to stdout). */
  log(line: string): void;
}

export interface ScenarioResult {
  rows: BenchRow[];
  /** Raw figures for the JSON file (summaries, counts, settings used). */
  details: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
