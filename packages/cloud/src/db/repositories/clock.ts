/** Epoch milliseconds. Injected so tests (and replays) control every stored timestamp. */
export type Clock = () => number;
